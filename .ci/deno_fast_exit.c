/*
 * LD_PRELOAD guard for `deno test` on Mesa's GL driver (see RELIABILITY.md, "Exit code 134").
 *
 * Deno's WebGPU reaches Mesa's llvmpipe through wgpu's GL backend and libglvnd's libEGL.so.1.
 * `deno test` runs each test file on a thread of the main runtime's blocking pool, so those
 * threads hold libEGL per-thread state. At the end, Deno wakes the idle pool threads
 * (shutdown_background) and calls exit() without joining them: libEGL's destructor
 * (__eglFini -> __eglCurrentTeardown, run by _dl_fini in the main thread) frees every thread's
 * state while an exiting pool thread frees its own through its pthread-key destructor. The same
 * block is freed twice ("double free or corruption", "corrupted size vs. prev_size", exit 134)
 * or the heap is corrupted (exit 139).
 *
 * This guard replaces exit() in processes whose executable is named `deno`: it flushes C stdio
 * and calls _exit(status), so no library destructor runs and there is nothing to race. The exit
 * status is unchanged; Deno writes its own output (Rust) before calling exit(). Other programs
 * (python3, chromium, started by tests) get the real exit().
 *
 * Build: cc -O2 -shared -fPIC -o deno_fast_exit.so deno_fast_exit.c -ldl
 * Use:   LD_PRELOAD=$PWD/deno_fast_exit.so deno test ...
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int is_deno(void) {
  char path[4096];
  ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
  if (n <= 0) return 0;
  path[n] = '\0';
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  return strcmp(base, "deno") == 0;
}

void exit(int status) {
  if (is_deno()) {
    fflush(NULL);
    _exit(status);
  }
  void (*real_exit)(int) = (void (*)(int))dlsym(RTLD_NEXT, "exit");
  if (real_exit == NULL) {
    fflush(NULL);
    _exit(status);
  }
  real_exit(status);
  __builtin_unreachable();
}
