#include "trace/line_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#define ZLIB_CONST
#include <zlib.h>
#include <zstd.h>

namespace mmfuzz::trace {

namespace {

// Raw reads and decoder output come in chunks this large: few system calls
// and few decoder calls per megabyte.
constexpr std::size_t kChunk = std::size_t{1} << 20;

bool has_prefix(const char* p, std::size_t n, std::string_view magic) {
  return n >= magic.size() && std::memcmp(p, magic.data(), magic.size()) == 0;
}

}  // namespace

struct LineReader::Decoder {
  z_stream zs{};
  bool zs_init = false;
  ZSTD_DCtx* zd = nullptr;
  // Inside a gzip member or zstd frame: the input must not end here.
  bool in_frame = false;

  Decoder() = default;
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;
  ~Decoder() {
    if (zs_init) inflateEnd(&zs);
    ZSTD_freeDCtx(zd);
  }
};

LineReader::LineReader(const std::string& path) {
  if (path == "-") {
    name_ = "<stdin>";
    fd_ = STDIN_FILENO;
  } else {
    name_ = path;
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) fail_errno(errno);
    own_fd_ = true;
  }
  try {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) fail_errno(errno);
    // open() succeeds on a directory; say so now rather than at read().
    if (S_ISDIR(st.st_mode)) fail_errno(EISDIR);
    if (S_ISREG(st.st_mode)) size_ = static_cast<std::uint64_t>(st.st_size);

    in_ = std::make_unique<char[]>(kChunk);
    // Enough bytes to see a magic number, even from a pipe's small writes.
    while (in_end_ < sizeof head_) {
      const std::size_t n = read_raw(in_.get() + in_end_, kChunk - in_end_);
      if (n == 0) {
        raw_eof_ = true;
        break;
      }
      in_end_ += n;
    }
    head_len_ = std::min(in_end_, sizeof head_);
    std::memcpy(head_, in_.get(), head_len_);

    // The magic decides; a ".gz" or ".zst" name without it is read as text.
    const char* p = in_.get();
    if (has_prefix(p, in_end_, std::string_view("\x1f\x8b", 2))) {
      compression_ = Compression::gzip;
    } else if (has_prefix(p, in_end_, std::string_view("\x28\xb5\x2f\xfd", 4))) {
      compression_ = Compression::zstd;
    }

    // A line may end up to kMaxLineBytes + 1 ("\r") long before its "\n"
    // arrives; a chunk more leaves room for the next read.
    cap_ = kMaxLineBytes + 1 + kChunk;
    buf_ = std::make_unique<char[]>(cap_);
    dec_ = std::make_unique<Decoder>();
    switch (compression_) {
      case Compression::none:
        // The first chunk is already text.
        std::memcpy(buf_.get(), in_.get(), in_end_);
        end_ = in_end_;
        in_pos_ = in_end_ = 0;
        in_.reset();  // later reads go straight into buf_
        eof_ = raw_eof_;
        break;
      case Compression::gzip:
        // windowBits 15 + 32: a gzip or zlib header, detected by inflate.
        if (inflateInit2(&dec_->zs, 15 + 32) != Z_OK) fail("cannot initialize zlib");
        dec_->zs_init = true;
        break;
      case Compression::zstd:
        dec_->zd = ZSTD_createDCtx();
        if (dec_->zd == nullptr) fail("cannot initialize zstd");
        break;
    }
  } catch (...) {
    if (own_fd_) ::close(fd_);
    throw;
  }
}

LineReader::~LineReader() {
  if (own_fd_) ::close(fd_);
}

void LineReader::fail(const std::string& reason) const {
  throw InputError(name_ + ": " + reason);
}

void LineReader::fail_errno(int err) const {
  fail(std::strerror(err));
}

void LineReader::fail_long_line() const {
  throw InputError(name_ + ":" + std::to_string(line_no_) + ": line longer than 1 MiB");
}

std::uint64_t LineReader::bytes_done() const {
  // Bytes read but not yet returned as lines (plain) or decoded (compressed).
  const std::size_t pending = compression_ == Compression::none ? end_ - pos_ : in_end_ - in_pos_;
  return raw_read_ - pending;
}

volatile std::sig_atomic_t& read_interrupted() {
  static volatile std::sig_atomic_t flag = 0;
  return flag;
}

std::size_t LineReader::read_raw(char* dst, std::size_t cap) {
  for (;;) {
    if (read_interrupted()) {
      interrupted_ = true;
      return 0;
    }
    const ssize_t n = ::read(fd_, dst, cap);
    if (n >= 0) {
      raw_read_ += static_cast<std::uint64_t>(n);
      return static_cast<std::size_t>(n);
    }
    if (errno != EINTR) fail_errno(errno);
  }
}

bool LineReader::next(std::string_view& line) {
  std::size_t scanned = 0;  // bytes after pos_ known to hold no '\n'
  for (;;) {
    char* const start = buf_.get() + pos_;
    const std::size_t avail = end_ - pos_;
    const void* nl = std::memchr(start + scanned, '\n', avail - scanned);
    std::size_t len;
    if (nl != nullptr) {
      len = static_cast<std::size_t>(static_cast<const char*>(nl) - start);
      pos_ += len + 1;
    } else if (eof_) {
      if (avail == 0 || interrupted_) return false;  // no partial line after a signal
      len = avail;                                   // the last line has no newline
      pos_ = end_;
    } else {
      if (avail > kMaxLineBytes + 1) {
        line_no_++;
        fail_long_line();
      }
      // Keep the partial line and read more behind it.
      if (pos_ > 0) {
        std::memmove(buf_.get(), start, avail);
        pos_ = 0;
        end_ = avail;
      }
      scanned = avail;
      if (!fill()) eof_ = true;
      continue;
    }
    line_no_++;
    if (len > 0 && start[len - 1] == '\r') len--;
    if (len > kMaxLineBytes) fail_long_line();
    line = std::string_view(start, len);
    return true;
  }
}

bool LineReader::fill() {
  switch (compression_) {
    case Compression::none:
      return fill_plain();
    case Compression::gzip:
      return fill_gzip();
    case Compression::zstd:
      return fill_zstd();
  }
  return false;
}

bool LineReader::fill_plain() {
  const std::size_t n = read_raw(buf_.get() + end_, cap_ - end_);
  end_ += n;
  return n > 0;
}

// Both decoders: decode what input there is (even none: a decoder may hold
// output it could not write yet), read more only when nothing came out, and
// at the end of the input insist that the last member or frame was complete.
bool LineReader::fill_gzip() {
  z_stream& zs = dec_->zs;
  const std::size_t space = cap_ - end_;
  zs.next_out = reinterpret_cast<Bytef*>(buf_.get() + end_);
  zs.avail_out = static_cast<uInt>(space);
  for (;;) {
    const std::size_t in_avail = in_end_ - in_pos_;
    if (in_avail > 0 || dec_->in_frame) {
      zs.next_in = reinterpret_cast<const Bytef*>(in_.get() + in_pos_);
      zs.avail_in = static_cast<uInt>(in_avail);
      if (in_avail > 0) dec_->in_frame = true;
      const int rc = inflate(&zs, Z_NO_FLUSH);
      in_pos_ = in_end_ - zs.avail_in;
      if (rc == Z_STREAM_END) {
        // One member done; concatenated members (gzip a b > c) follow.
        inflateReset(&zs);
        dec_->in_frame = false;
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        fail(std::string("corrupt gzip data (") + (zs.msg != nullptr ? zs.msg : "inflate failed") +
             ")");
      }
      const std::size_t produced = space - zs.avail_out;
      if (produced > 0) {
        end_ += produced;
        return true;
      }
      if (in_pos_ < in_end_) continue;
    }
    if (raw_eof_) {
      if (dec_->in_frame && !interrupted_) fail("truncated gzip stream (ended inside a member)");
      return false;
    }
    in_pos_ = 0;
    in_end_ = read_raw(in_.get(), kChunk);
    if (in_end_ == 0) raw_eof_ = true;
  }
}

bool LineReader::fill_zstd() {
  ZSTD_outBuffer out{buf_.get() + end_, cap_ - end_, 0};
  for (;;) {
    if (in_end_ > in_pos_ || dec_->in_frame) {
      ZSTD_inBuffer in{in_.get() + in_pos_, in_end_ - in_pos_, 0};
      const std::size_t rc = ZSTD_decompressStream(dec_->zd, &out, &in);
      in_pos_ += in.pos;
      if (ZSTD_isError(rc) != 0)
        fail(std::string("corrupt zstd data (") + ZSTD_getErrorName(rc) + ")");
      // 0: a frame is complete and flushed; a next frame may follow.
      dec_->in_frame = rc != 0;
      if (out.pos > 0) {
        end_ += out.pos;
        return true;
      }
      if (in_pos_ < in_end_) continue;
    }
    if (raw_eof_) {
      if (dec_->in_frame && !interrupted_) fail("truncated zstd stream (ended inside a frame)");
      return false;
    }
    in_pos_ = 0;
    in_end_ = read_raw(in_.get(), kChunk);
    if (in_end_ == 0) raw_eof_ = true;
  }
}

}  // namespace mmfuzz::trace
