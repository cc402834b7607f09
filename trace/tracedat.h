/* trace-cmd's binary trace.dat read through libtracecmd, behind a small C
 * interface: libtracefs's header (pulled in by trace-cmd.h) does not compile
 * as C++. Records come merged across CPUs in time order; fields are read by
 * name from the binary record (print formats are never evaluated: arm64's
 * mm_page_* formats defeat libtraceevent). */
#ifndef MMFUZZ_TRACE_TRACEDAT_H
#define MMFUZZ_TRACE_TRACEDAT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The fields read by name. Signed fields are sign-extended. */
enum mmfuzz_td_field {
  MMFUZZ_TD_CALL_SITE,
  MMFUZZ_TD_PTR,
  MMFUZZ_TD_BYTES_REQ,
  MMFUZZ_TD_BYTES_ALLOC,
  MMFUZZ_TD_GFP_FLAGS,
  MMFUZZ_TD_NODE,
  MMFUZZ_TD_ACCOUNTED,
  MMFUZZ_TD_PFN,
  MMFUZZ_TD_ORDER,
  MMFUZZ_TD_MIGRATETYPE,
  MMFUZZ_TD_PERCPU_REFILL,
  MMFUZZ_TD_ALLOC_ORDER,
  MMFUZZ_TD_FALLBACK_ORDER,
  MMFUZZ_TD_ALLOC_MIGRATETYPE,
  MMFUZZ_TD_FALLBACK_MIGRATETYPE,
  MMFUZZ_TD_CHANGE_OWNERSHIP,
  MMFUZZ_TD_MM_ID, /* rss_stat */
  MMFUZZ_TD_CURR,
  MMFUZZ_TD_MEMBER,
  MMFUZZ_TD_SIZE, /* rss_stat, alloc_vmap_area */
  MMFUZZ_TD_ADDR, /* alloc_vmap_area */
  MMFUZZ_TD_ALIGN,
  MMFUZZ_TD_VSTART,
  MMFUZZ_TD_VEND,
  MMFUZZ_TD_FAILED,
  MMFUZZ_TD_VA_START, /* free_vmap_area_noflush */
  MMFUZZ_TD_NR_LAZY,
  MMFUZZ_TD_NR_LAZY_MAX,
  MMFUZZ_TD_START, /* purge_vmap_area_lazy */
  MMFUZZ_TD_END,
  MMFUZZ_TD_NPURGED,
  MMFUZZ_TD_IP, /* ftrace print */
  MMFUZZ_TD_NR_FIELDS
};

/* Bits of mmfuzz_td_record.flags. */
enum {
  MMFUZZ_TD_HAS_STR = 1 << 0,              /* str holds name= (kmem) or buf (ftrace print) */
  MMFUZZ_TD_PRINT_HAS_ACCOUNTED = 1 << 1,  /* the print format shows accounted= */
  MMFUZZ_TD_PRINT_HAS_FRAGMENTING = 1 << 2 /* the print format shows fragmenting= */
};

struct mmfuzz_td_record {
  int event_id;       /* the record's common_type; -1 if the record is too short */
  const char* system; /* "kmem", "vmalloc", "ftrace", ...; NULL if event_id has no
                         format in the file (a damaged record); valid while open */
  const char* event;  /* "kmalloc", "print", ... */
  unsigned slot;      /* a dense number per distinct event, for the caller's caches */
  int cpu;
  int pid;
  const char* comm; /* from the saved cmdlines; "<...>" when unknown */
  uint64_t ts_ns;
  /* Events the ring buffer dropped on this CPU just before: 0 none, -1 some
   * (the count is not known). */
  int64_t missed;
  uint64_t have; /* bit (1 << MMFUZZ_TD_x): the event has field x */
  uint64_t val[MMFUZZ_TD_NR_FIELDS];
  unsigned flags;
  const char* str; /* not NUL-terminated; valid until the next call */
  size_t str_len;
};

struct mmfuzz_td;

/* Opens a trace.dat; NULL with a one-line reason in err (no file name). */
struct mmfuzz_td* mmfuzz_td_open(const char* path, char* err, size_t err_len);
/* 1: *rec holds the next record; 0: the end; -1: err says why. */
int mmfuzz_td_next(struct mmfuzz_td* td, struct mmfuzz_td_record* rec, char* err, size_t err_len);
void mmfuzz_td_close(struct mmfuzz_td* td);

/* The function containing addr from the file's kallsyms: its name and addr's
 * offset into it. 0 if the file has no symbol for addr. */
int mmfuzz_td_function(struct mmfuzz_td* td, uint64_t addr, const char** name, uint64_t* off);
/* Progress: an estimate of the file bytes read, and the file size. */
uint64_t mmfuzz_td_bytes_done(const struct mmfuzz_td* td);
uint64_t mmfuzz_td_bytes_total(const struct mmfuzz_td* td);
/* "call_site" for MMFUZZ_TD_CALL_SITE. */
const char* mmfuzz_td_field_name(int field);
/* The page size of the traced kernel. */
int mmfuzz_td_page_size(const struct mmfuzz_td* td);

#ifdef __cplusplus
}
#endif

#endif /* MMFUZZ_TRACE_TRACEDAT_H */
