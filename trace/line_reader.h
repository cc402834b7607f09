// Reads a text file line by line: plain, gzip or zstd (told apart by magic,
// not by extension), a path or "-" for standard input. Lines are views into
// one reusable buffer; memory stays bounded whatever the input's length.
#pragma once

#include <csignal>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "trace/source.h"

namespace mmfuzz::trace {

inline constexpr std::size_t kMaxLineBytes = std::size_t{1} << 20;  // 1 MiB

// The first bytes of a trace.dat file (trace-cmd's tracecmd_output header).
inline constexpr std::string_view kTraceDatMagic{"\x17\x08\x44tracing", 10};

// Set from a SIGINT/SIGTERM handler (cli/): a read() the signal interrupts
// ends the input there, as at EOF, without its partial last line.
volatile std::sig_atomic_t& read_interrupted();

class LineReader {
 public:
  // Opens `path` ("-": standard input) and reads its first chunk to tell the
  // compression. Throws InputError ("trace.txt: No such file or directory").
  explicit LineReader(const std::string& path);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // The next line without "\n" or "\r\n"; valid until the next call. False at
  // the end. Throws InputError (corrupt or truncated stream, overlong line).
  bool next(std::string_view& line);

  std::uint64_t line_no() const { return line_no_; }  // 1-based number of the last line
  bool interrupted() const { return interrupted_; }   // ended by read_interrupted()
  // Input bytes consumed (compressed bytes for .gz / .zst) and the input's
  // size (0 when it is not a regular file).
  std::uint64_t bytes_done() const;
  std::uint64_t bytes_total() const { return size_; }
  Compression compression() const { return compression_; }
  const std::string& name() const { return name_; }  // the path, "<stdin>" for "-"
  // Up to the first 16 bytes of the raw (still compressed) input.
  std::string_view head() const { return {head_, head_len_}; }
  // The file descriptor (stdin's is not closed by the destructor).
  int fd() const { return fd_; }

 private:
  struct Decoder;

  [[noreturn]] void fail(const std::string& reason) const;
  [[noreturn]] void fail_errno(int err) const;
  [[noreturn]] void fail_long_line() const;
  std::size_t read_raw(char* dst, std::size_t cap);  // 0 at the end
  // Appends decoded bytes at buf_[end_..]; false when the input has ended.
  bool fill();
  bool fill_plain();
  bool fill_gzip();
  bool fill_zstd();

  std::string name_;
  int fd_ = -1;
  bool own_fd_ = false;
  std::uint64_t size_ = 0;
  std::uint64_t raw_read_ = 0;  // bytes read from fd_
  Compression compression_ = Compression::none;
  char head_[16] = {};
  std::size_t head_len_ = 0;

  // Decoded text: [pos_, end_) is not yet returned.
  std::unique_ptr<char[]> buf_;
  std::size_t cap_ = 0, pos_ = 0, end_ = 0;
  bool eof_ = false;  // no more decoded bytes will come
  bool interrupted_ = false;
  std::uint64_t line_no_ = 0;

  // Raw input of the compressed forms: [in_pos_, in_end_) not yet decoded.
  std::unique_ptr<char[]> in_;
  std::size_t in_pos_ = 0, in_end_ = 0;
  bool raw_eof_ = false;
  std::unique_ptr<Decoder> dec_;
};

}  // namespace mmfuzz::trace
