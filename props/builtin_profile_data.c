/* The built-in workload profile (props/builtin_profile.h), embedded in the
 * library as cli/default_trace.c embeds the default trace. */
#ifndef MMFUZZ_BUILTIN_PROFILE
#error "MMFUZZ_BUILTIN_PROFILE must name the profile JSON file"
#endif

__asm__(".section .rodata\n"
        ".balign 16\n"
        ".globl mmfuzz_builtin_profile\n"
        "mmfuzz_builtin_profile:\n"
        ".incbin \"" MMFUZZ_BUILTIN_PROFILE "\"\n"
        ".globl mmfuzz_builtin_profile_end\n"
        "mmfuzz_builtin_profile_end:\n"
        ".byte 0\n"
        ".previous\n");
