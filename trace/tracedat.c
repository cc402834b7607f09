/* trace.dat through libtracecmd (see tracedat.h). */
#define _GNU_SOURCE /* trace-cmd.h uses cpu_set_t */
#include "trace/tracedat.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <trace-cmd.h>
#include <unistd.h>

/* Exported by libtracecmd.so.1 but declared only in its private header.
 * Weak: without it there is no progress estimate and no check that each
 * CPU's data was read to its end. */
extern off_t tracecmd_get_cpu_file_size(struct tracecmd_input* handle, int cpu)
    __attribute__((weak));

#if defined(__SANITIZE_ADDRESS__)
#define MMFUZZ_TD_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MMFUZZ_TD_ASAN 1
#endif
#endif
#ifdef MMFUZZ_TD_ASAN
/* LeakSanitizer: libtraceevent 1.7 leaks a few bytes per trace.dat (while
 * parsing event formats, some through sscanf), libtracecmd 3.1.6 its tep
 * handle when an open fails. Not ours to fix; keep sanitizer runs clean. */
const char* __lsan_default_suppressions(void);
const char* __lsan_default_suppressions(void) {
  return "leak:libtraceevent.so\nleak:libtracecmd.so\nleak:__isoc99_vsscanf\n";
}
#endif

static const char* const field_names[MMFUZZ_TD_NR_FIELDS] = {
    "call_site",
    "ptr",
    "bytes_req",
    "bytes_alloc",
    "gfp_flags",
    "node",
    "accounted",
    "pfn",
    "order",
    "migratetype",
    "percpu_refill",
    "alloc_order",
    "fallback_order",
    "alloc_migratetype",
    "fallback_migratetype",
    "change_ownership",
    "mm_id",
    "curr",
    "member",
    "size",
    "addr",
    "align",
    "vstart",
    "vend",
    "failed",
    "va_start",
    "nr_lazy",
    "nr_lazy_max",
    "start",
    "end",
    "npurged",
    "ip",
};

/* What we know of one event id, found on its first record. */
struct td_event {
  struct tep_event* ev; /* NULL: the id is not in the file's formats */
  int wanted;           /* kmem, vmalloc or ftrace print */
  unsigned slot;
  unsigned flags;
  struct tep_format_field* field[MMFUZZ_TD_NR_FIELDS];
  struct tep_format_field* str; /* name (kmem) or buf (print) */
};

struct mmfuzz_td {
  struct tracecmd_input* h;
  struct tep_handle* tep;
  int cpus;
  int page_size;
  uint64_t file_size;
  /* Per CPU: the next record, the first and the latest record offsets,
   * the CPU's data size (0 when unknown). */
  struct tep_record** pending;
  uint64_t* first_off;
  uint64_t* last_off;
  uint64_t* cpu_size;
  struct tep_record* current; /* handed out last; freed on the next call */
  struct td_event** by_id;    /* indexed by event id */
  size_t nr_ids;
  unsigned next_slot;
};

static void set_err(char* err, size_t len, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char* err, size_t len, const char* fmt, ...) {
  va_list ap;
  if (err == NULL || len == 0) return;
  va_start(ap, fmt);
  vsnprintf(err, len, fmt, ap);
  va_end(ap);
}

/* ---- A walk over the v6 file layout (trace-cmd.dat.v6(5)) up to the CPU
 * data table. libtracecmd 3.1.6 crashes in its error path when a CPU's data
 * runs past the end of the file (tracecmd_close() of a half-initialized
 * handle), so a truncated v6 file must be refused before it sees it. */

struct walk {
  int fd;
  uint64_t pos;
  uint64_t size;
  int big_endian;
};

static int walk_read(struct walk* w, void* buf, uint64_t n) {
  if (n > w->size || w->pos > w->size - n) return -1;
  char* p = buf;
  uint64_t done = 0;
  while (done < n) {
    ssize_t r = pread(w->fd, p + done, (size_t)(n - done), (off_t)(w->pos + done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    done += (uint64_t)r;
  }
  w->pos += n;
  return 0;
}

static int walk_skip(struct walk* w, uint64_t n) {
  if (n > w->size || w->pos > w->size - n) return -1;
  w->pos += n;
  return 0;
}

static int walk_num(struct walk* w, int bytes, uint64_t* out) {
  unsigned char b[8];
  uint64_t v = 0;
  int i;
  if (walk_read(w, b, (uint64_t)bytes) != 0) return -1;
  for (i = 0; i < bytes; i++) {
    const int k = w->big_endian ? i : bytes - 1 - i;
    v = (v << 8) | b[k];
  }
  *out = v;
  return 0;
}

static int walk_label(struct walk* w, const char* label, uint64_t len) {
  char buf[16];
  if (len > sizeof buf || walk_read(w, buf, len) != 0) return -1;
  return memcmp(buf, label, (size_t)len) == 0 ? 0 : -1;
}

static int walk_string(struct walk* w) {
  char c;
  int n;
  for (n = 0; n < 4096; n++) {
    if (walk_read(w, &c, 1) != 0) return -1;
    if (c == '\0') return 0;
  }
  return -1;
}

/* Skips `count` blocks of "size (size_bytes) + data". */
static int walk_blocks(struct walk* w, uint64_t count, int size_bytes) {
  uint64_t i, size;
  for (i = 0; i < count; i++)
    if (walk_num(w, size_bytes, &size) != 0 || walk_skip(w, size) != 0) return -1;
  return 0;
}

/* 0: fine (or not v6); -1: err says what is wrong. */
static int check_v6(int fd, uint64_t file_size, char* err, size_t len) {
  struct walk w = {fd, 0, file_size, 0};
  char version[8];
  unsigned char endian;
  uint64_t count, i, cpus, opt, size;
  char label[10];
  int n;

  if (walk_skip(&w, 10) != 0) goto truncated;
  for (n = 0; n < (int)sizeof version; n++) {
    if (walk_read(&w, &version[n], 1) != 0) goto truncated;
    if (version[n] == '\0') break;
  }
  if (n == (int)sizeof version || strcmp(version, "6") != 0) return 0;
  if (walk_read(&w, &endian, 1) != 0 || walk_skip(&w, 1 + 4) != 0) goto truncated;
  w.big_endian = endian != 0;
  if (walk_label(&w, "header_page", 12) != 0 || walk_blocks(&w, 1, 8) != 0 ||
      walk_label(&w, "header_event", 13) != 0 || walk_blocks(&w, 1, 8) != 0)
    goto truncated;
  /* ftrace formats; then systems, each a name and its formats */
  if (walk_num(&w, 4, &count) != 0 || walk_blocks(&w, count, 8) != 0) goto truncated;
  if (walk_num(&w, 4, &count) != 0) goto truncated;
  for (i = 0; i < count; i++) {
    uint64_t events;
    if (walk_string(&w) != 0 || walk_num(&w, 4, &events) != 0 || walk_blocks(&w, events, 8) != 0)
      goto truncated;
  }
  /* kallsyms, printk formats, saved cmdlines, the CPU count */
  if (walk_blocks(&w, 2, 4) != 0 || walk_blocks(&w, 1, 8) != 0 || walk_num(&w, 4, &cpus) != 0)
    goto truncated;
  if (walk_read(&w, label, 10) != 0) goto truncated;
  if (memcmp(label, "options", 7) == 0) {
    for (;;) {
      if (walk_num(&w, 2, &opt) != 0) goto truncated;
      if (opt == 0) break;
      if (walk_num(&w, 4, &size) != 0) goto truncated;
      if (opt == 8) { /* TRACECMD_OPTION_CPUCOUNT */
        if (size < 4) goto corrupt;
        if (walk_num(&w, 4, &cpus) != 0 || walk_skip(&w, size - 4) != 0) goto truncated;
      } else if (walk_skip(&w, size) != 0) {
        goto truncated;
      }
    }
    if (walk_read(&w, label, 10) != 0) goto truncated;
  }
  if (memcmp(label, "latency", 7) == 0) return 0;
  if (memcmp(label, "flyrecord", 9) != 0) goto corrupt;
  if (cpus > 4096) goto corrupt;
  for (i = 0; i < cpus; i++) {
    uint64_t off;
    if (walk_num(&w, 8, &off) != 0 || walk_num(&w, 8, &size) != 0) goto truncated;
    if (size != 0 && (off > file_size || size > file_size - off)) {
      set_err(err, len,
              "truncated trace.dat: CPU %llu's data ends at byte %llu, the file has %llu bytes",
              (unsigned long long)i, (unsigned long long)(off + size),
              (unsigned long long)file_size);
      return -1;
    }
  }
  return 0;
truncated:
  set_err(err, len, "truncated trace.dat (the headers end at byte %llu)",
          (unsigned long long)w.pos);
  return -1;
corrupt:
  set_err(err, len, "corrupt trace.dat headers (near byte %llu)", (unsigned long long)w.pos);
  return -1;
}

/* ---- Opening ---- */

struct mmfuzz_td* mmfuzz_td_open(const char* path, char* err, size_t err_len) {
  struct mmfuzz_td* td;
  struct stat st;
  int fd, cpu;
  char head[18] = {0};
  const char* version = head + 10;

  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    set_err(err, err_len, "%s", strerror(errno));
    return NULL;
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    set_err(err, err_len, "a trace.dat must be a regular file");
    close(fd);
    return NULL;
  }
  if (pread(fd, head, sizeof head - 1, 0) < 12 || memcmp(head, "\027\010\104tracing", 10) != 0) {
    set_err(err, err_len, "not a trace.dat (no trace-cmd magic)");
    close(fd);
    return NULL;
  }
  if (strcmp(version, "6") != 0 && strcmp(version, "7") != 0) {
    set_err(err, err_len, "unsupported trace.dat version '%.4s' (libtracecmd reads 6 and 7)",
            version);
    close(fd);
    return NULL;
  }
  if (check_v6(fd, (uint64_t)st.st_size, err, err_len) != 0) {
    close(fd);
    return NULL;
  }
  close(fd);

  td = calloc(1, sizeof *td);
  if (td == NULL) {
    set_err(err, err_len, "out of memory");
    return NULL;
  }
  td->file_size = (uint64_t)st.st_size;

  /* libtracecmd and libtraceevent print warnings for damaged files; the
   * caller reports errors itself. */
  tracecmd_set_loglevel(TEP_LOG_NONE);
  tep_set_loglevel(TEP_LOG_NONE);
  /* No plugins: they only change how events print, which we never use. */
  td->h = tracecmd_open(path, TRACECMD_FL_LOAD_NO_PLUGINS | TRACECMD_FL_LOAD_NO_SYSTEM_PLUGINS);
  if (td->h == NULL) {
    set_err(err, err_len, "corrupt or truncated trace.dat (libtracecmd cannot open it)");
    free(td);
    return NULL;
  }
  td->tep = tracecmd_get_tep(td->h);
  td->cpus = td->tep != NULL ? tep_get_cpus(td->tep) : 0;
  if (td->tep == NULL || td->cpus < 0 || td->cpus > 65536) {
    set_err(err, err_len, "corrupt trace.dat (bad CPU count)");
    mmfuzz_td_close(td);
    return NULL;
  }
  td->page_size = tep_get_page_size(td->tep);
  if (td->page_size <= 0) td->page_size = 4096;
  if (td->cpus > 0) {
    const size_t n = (size_t)td->cpus;
    td->pending = calloc(n, sizeof *td->pending);
    td->first_off = calloc(n, sizeof *td->first_off);
    td->last_off = calloc(n, sizeof *td->last_off);
    td->cpu_size = calloc(n, sizeof *td->cpu_size);
    if (!td->pending || !td->first_off || !td->last_off || !td->cpu_size) {
      set_err(err, err_len, "out of memory");
      mmfuzz_td_close(td);
      return NULL;
    }
  }
  for (cpu = 0; cpu < td->cpus; cpu++) {
    if (tracecmd_get_cpu_file_size) {
      const off_t size = tracecmd_get_cpu_file_size(td->h, cpu);
      td->cpu_size[cpu] = size > 0 ? (uint64_t)size : 0;
    }
    td->pending[cpu] = tracecmd_read_data(td->h, cpu);
    if (td->pending[cpu] != NULL) {
      td->first_off[cpu] = td->pending[cpu]->offset;
      td->last_off[cpu] = td->pending[cpu]->offset;
    } else if (td->cpu_size[cpu] > 2 * (uint64_t)td->page_size) {
      set_err(err, err_len, "corrupt trace.dat: no record of CPU %d's %llu bytes can be read", cpu,
              (unsigned long long)td->cpu_size[cpu]);
      mmfuzz_td_close(td);
      return NULL;
    }
  }
  return td;
}

void mmfuzz_td_close(struct mmfuzz_td* td) {
  int cpu;
  size_t i;
  if (td == NULL) return;
  tracecmd_free_record(td->current);
  if (td->pending)
    for (cpu = 0; cpu < td->cpus; cpu++) tracecmd_free_record(td->pending[cpu]);
  tracecmd_close(td->h);
  for (i = 0; i < td->nr_ids; i++) free(td->by_id[i]);
  free(td->by_id);
  free(td->pending);
  free(td->first_off);
  free(td->last_off);
  free(td->cpu_size);
  free(td);
}

/* ---- Records ---- */

static int is_wanted(const struct tep_event* ev) {
  if (ev->system == NULL || ev->name == NULL) return 0;
  if (strcmp(ev->system, "kmem") == 0 || strcmp(ev->system, "vmalloc") == 0) return 1;
  return strcmp(ev->system, "ftrace") == 0 && strcmp(ev->name, "print") == 0;
}

static struct td_event* lookup_event(struct mmfuzz_td* td, int id) {
  struct td_event* te;
  int i;
  if (id < 0 || id > 0xffff) return NULL;
  if ((size_t)id >= td->nr_ids) {
    const size_t n = (size_t)id + 1;
    struct td_event** grown = realloc(td->by_id, n * sizeof *grown);
    if (grown == NULL) return NULL;
    memset(grown + td->nr_ids, 0, (n - td->nr_ids) * sizeof *grown);
    td->by_id = grown;
    td->nr_ids = n;
  }
  te = td->by_id[id];
  if (te != NULL) return te;
  te = calloc(1, sizeof *te);
  if (te == NULL) return NULL;
  te->ev = tep_find_event(td->tep, id);
  te->slot = td->next_slot++;
  if (te->ev != NULL && is_wanted(te->ev)) {
    const char* fmt = te->ev->print_fmt.format;
    te->wanted = 1;
    for (i = 0; i < MMFUZZ_TD_NR_FIELDS; i++) te->field[i] = tep_find_field(te->ev, field_names[i]);
    te->str = tep_find_field(te->ev, strcmp(te->ev->name, "print") == 0 ? "buf" : "name");
    /* What the text form would show, for fields computed at print time. */
    if (fmt != NULL && strstr(fmt, "accounted=") != NULL)
      te->flags |= MMFUZZ_TD_PRINT_HAS_ACCOUNTED;
    if (fmt != NULL && strstr(fmt, "fragmenting=") != NULL)
      te->flags |= MMFUZZ_TD_PRINT_HAS_FRAGMENTING;
  }
  td->by_id[id] = te;
  return te;
}

/* A numeric field, bounds-checked against the record (the library does not
 * check). */
static int read_num(const struct tep_record* r, struct tep_format_field* f, uint64_t* out) {
  unsigned long long v;
  if (f->flags & (TEP_FIELD_IS_ARRAY | TEP_FIELD_IS_DYNAMIC | TEP_FIELD_IS_STRING)) return -1;
  if (f->offset < 0 || f->size <= 0 || f->size > 8 || f->offset + f->size > r->size) return -1;
  if (tep_read_number_field(f, r->data, &v) != 0) return -1;
  if ((f->flags & TEP_FIELD_IS_SIGNED) && f->size < 8) {
    const unsigned bits = (unsigned)f->size * 8u;
    const unsigned long long sign = 1ull << (bits - 1);
    v &= (sign << 1) - 1;
    v = (v ^ sign) - sign;
  }
  *out = (uint64_t)v;
  return 0;
}

/* A string field: __data_loc, a fixed char array, or a flexible array to
 * the end of the record (ftrace print's buf[]). */
static int read_str(const struct tep_record* r, struct tep_format_field* f, const char** s,
                    size_t* len) {
  const char* data = r->data;
  size_t off, n;
  if (f->offset < 0 || f->size < 0 || f->offset + f->size > r->size) return -1;
  if (f->flags & TEP_FIELD_IS_DYNAMIC) {
    unsigned long long loc;
    if (f->size != 4 || tep_read_number_field(f, r->data, &loc) != 0) return -1;
    off = (size_t)(loc & 0xffff);
    n = (size_t)((loc >> 16) & 0xffff);
    if (f->flags & TEP_FIELD_IS_RELATIVE) off += (size_t)f->offset + (size_t)f->size;
  } else {
    off = (size_t)f->offset;
    n = f->size > 0 ? (size_t)f->size : (size_t)r->size - off;
  }
  if (off > (size_t)r->size || n > (size_t)r->size - off) return -1;
  *s = data + off;
  *len = strnlen(data + off, n);
  return 0;
}

/* After CPU `cpu` ran out of records: did it read all of its data? The
 * library gives no error when a page cannot be read (a bad compressed
 * chunk); it just ends that CPU. */
static int check_cpu_end(struct mmfuzz_td* td, int cpu, char* err, size_t len) {
  const uint64_t page = (uint64_t)td->page_size;
  const uint64_t start = td->first_off[cpu] / page * page;
  const uint64_t size = td->cpu_size[cpu];
  if (size == 0) return 0;
  /* The last record lies in the last page or the one before it (slack for
   * a page holding only padding). */
  if (td->last_off[cpu] - start + 2 * page < size) {
    set_err(err, len,
            "corrupt trace.dat: CPU %d's records end after %llu of its %llu bytes (a damaged "
            "page or compressed chunk)",
            cpu, (unsigned long long)(td->last_off[cpu] - start), (unsigned long long)size);
    return -1;
  }
  return 0;
}

int mmfuzz_td_next(struct mmfuzz_td* td, struct mmfuzz_td_record* rec, char* err, size_t len) {
  struct tep_record* r;
  struct td_event* te;
  int cpu, best = -1, i;

  tracecmd_free_record(td->current);
  td->current = NULL;
  /* The earliest pending record; ties go to the lower CPU, as in
   * trace-cmd report. */
  for (cpu = 0; cpu < td->cpus; cpu++)
    if (td->pending[cpu] != NULL && (best < 0 || td->pending[cpu]->ts < td->pending[best]->ts))
      best = cpu;
  if (best < 0) return 0;
  r = td->pending[best];
  td->current = r;
  td->last_off[best] = r->offset;
  td->pending[best] = tracecmd_read_data(td->h, best);
  if (td->pending[best] == NULL && check_cpu_end(td, best, err, len) != 0) return -1;

  memset(rec, 0, sizeof *rec);
  rec->cpu = r->cpu;
  rec->ts_ns = r->ts;
  rec->missed = r->missed_events;
  rec->pid = -1;
  rec->event_id = -1;
  /* The common header (type, flags, preempt count, pid) is 8 bytes. */
  if (r->size < 8 || r->data == NULL) return 1;
  rec->event_id = tep_data_type(td->tep, r);
  te = lookup_event(td, rec->event_id);
  if (te == NULL || te->ev == NULL) return 1;
  rec->system = te->ev->system;
  rec->event = te->ev->name;
  rec->slot = te->slot;
  if (!te->wanted) return 1;
  rec->pid = tep_data_pid(td->tep, r);
  rec->comm = tep_data_comm_from_pid(td->tep, rec->pid);
  rec->flags = te->flags;
  for (i = 0; i < MMFUZZ_TD_NR_FIELDS; i++)
    if (te->field[i] != NULL && read_num(r, te->field[i], &rec->val[i]) == 0)
      rec->have |= 1ull << i;
  if (te->str != NULL && read_str(r, te->str, &rec->str, &rec->str_len) == 0)
    rec->flags |= MMFUZZ_TD_HAS_STR;
  return 1;
}

int mmfuzz_td_function(struct mmfuzz_td* td, uint64_t addr, const char** name, uint64_t* off) {
  unsigned long long start = 0;
  unsigned long size = 0;
  const char* fn = NULL;
  if (!tep_find_function_info(td->tep, addr, &fn, &start, &size) || fn == NULL) return 0;
  *name = fn;
  *off = addr - start;
  return 1;
}

uint64_t mmfuzz_td_bytes_total(const struct mmfuzz_td* td) {
  int cpu;
  for (cpu = 0; cpu < td->cpus; cpu++)
    if (td->cpu_size[cpu] != 0) return td->file_size;
  return 0;
}

uint64_t mmfuzz_td_bytes_done(const struct mmfuzz_td* td) {
  /* Record offsets count uncompressed bytes per CPU: the share of them read
   * so far, applied to the file size. */
  double done = 0, total = 0;
  int cpu;
  for (cpu = 0; cpu < td->cpus; cpu++) {
    const uint64_t page = (uint64_t)td->page_size;
    const uint64_t start = td->first_off[cpu] / page * page;
    if (td->cpu_size[cpu] == 0) continue;
    total += (double)td->cpu_size[cpu];
    if (td->pending[cpu] == NULL)
      done += (double)td->cpu_size[cpu];
    else
      done += (double)(td->last_off[cpu] - start);
  }
  if (total <= 0) return 0;
  if (done > total) done = total;
  return (uint64_t)((double)td->file_size * (done / total));
}

int mmfuzz_td_page_size(const struct mmfuzz_td* td) {
  return td->page_size;
}

const char* mmfuzz_td_field_name(int field) {
  return field >= 0 && field < MMFUZZ_TD_NR_FIELDS ? field_names[field] : "?";
}
