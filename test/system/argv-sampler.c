/*
 * argv-sampler: the installer system test's witness that no key reaches a
 * command line. It sweeps /proc/<pid>/cmdline of every process it can see,
 * over and over as fast as it can, until STOPFILE exists; each distinct
 * command line it saw goes to OUT once (its NULs and newlines as spaces).
 * The last line is "# sweeps N reads R ms T max_sweep_us M".
 *
 * It is given no secret (that would put one on its own command line): the
 * test looks for the keys in OUT afterwards. Built static by the test
 * (gcc -static) and copied into the machine under test.
 *
 * usage: argv-sampler OUT STOPFILE
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SLOTS (1u << 18)
#define MAX_SECONDS (30 * 60)

static char buf[1 << 20];
static uint64_t seen[SLOTS];

static uint64_t now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

/* FNV-1a; 0 is kept for "empty slot". */
static uint64_t hash(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  return h ? h : 1;
}

/* 1 when h was not seen before (and is now), 0 when it was or the table is full. */
static int first_time(uint64_t h) {
  for (uint32_t i = 0, at = (uint32_t)h & (SLOTS - 1); i < SLOTS; i++, at = (at + 1) & (SLOTS - 1)) {
    if (seen[at] == h) return 0;
    if (seen[at] == 0) {
      seen[at] = h;
      return 1;
    }
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: argv-sampler OUT STOPFILE\n");
    return 2;
  }
  FILE *out = fopen(argv[1], "w");
  if (!out) {
    perror(argv[1]);
    return 1;
  }
  char self[32];
  snprintf(self, sizeof self, "%d", (int)getpid());
  fprintf(out, "# started\n");
  fflush(out);
  uint64_t start = now_us(), sweeps = 0, reads = 0, max_sweep = 0;
  for (;;) {
    uint64_t t0 = now_us();
    DIR *proc = opendir("/proc");
    if (!proc) {
      perror("/proc");
      return 1;
    }
    struct dirent *e;
    while ((e = readdir(proc)) != NULL) {
      if (e->d_name[0] < '0' || e->d_name[0] > '9' || strcmp(e->d_name, self) == 0) continue;
      char file[300];
      snprintf(file, sizeof file, "/proc/%s/cmdline", e->d_name);
      int fd = open(file, O_RDONLY | O_CLOEXEC);
      if (fd < 0) continue;
      size_t n = 0;
      ssize_t r;
      while (n < sizeof buf && (r = read(fd, buf + n, sizeof buf - n)) > 0) n += (size_t)r;
      close(fd);
      if (n == 0) continue; /* a kernel thread or a zombie */
      reads++;
      while (n > 0 && buf[n - 1] == '\0') n--;
      for (size_t i = 0; i < n; i++)
        if (buf[i] == '\0' || buf[i] == '\n' || buf[i] == '\r') buf[i] = ' ';
      if (first_time(hash(buf, n))) {
        fwrite(buf, 1, n, out);
        fputc('\n', out);
        fflush(out);
      }
    }
    closedir(proc);
    sweeps++;
    uint64_t t1 = now_us();
    if (t1 - t0 > max_sweep) max_sweep = t1 - t0;
    if (access(argv[2], F_OK) == 0 || t1 - start > (uint64_t)MAX_SECONDS * 1000000u) break;
  }
  fprintf(out, "# sweeps %llu reads %llu ms %llu max_sweep_us %llu\n", (unsigned long long)sweeps, (unsigned long long)reads,
          (unsigned long long)((now_us() - start) / 1000u), (unsigned long long)max_sweep);
  return fclose(out) == 0 ? 0 : 1;
}
