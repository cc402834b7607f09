/* The default trace of `mmfuzz replay`, embedded in the binary so that it
 * replays wherever the binary is installed. */
#ifndef MMFUZZ_DEFAULT_TRACE
#error "MMFUZZ_DEFAULT_TRACE must name the trace file"
#endif

__asm__(".section .rodata\n"
        ".balign 16\n"
        ".globl mmfuzz_default_trace\n"
        "mmfuzz_default_trace:\n"
        ".incbin \"" MMFUZZ_DEFAULT_TRACE "\"\n"
        ".globl mmfuzz_default_trace_end\n"
        "mmfuzz_default_trace_end:\n"
        ".previous\n");
