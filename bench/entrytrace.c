// entrytrace ADDRS OUT -- CMD [ARG...]: which functions of a static
// binary CMD runs, in the order they first run, in CMD and in every
// process it clones or forks, until that process calls execve (the
// container's program is not skiff). ADDRS lists function entry addresses
// (hex, one a line); each gets a one-shot breakpoint (int3) when CMD has
// been exec'd; the first hit of each is appended to OUT. Nearly native
// speed: each function traps once per process. scripts/link-order.sh
// turns OUT into the order the release binary is linked in. A benchmark
// tool, never part of skiff.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(const char *what) {
	perror(what);
	exit(2);
}

static uintptr_t *addr;
static uint8_t *orig, *hit;
static size_t n;

static int cmp(const void *a, const void *b) {
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
	return x < y ? -1 : x > y;
}

static long find(uintptr_t a) {
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (addr[mid] == a) return (long)mid;
		if (addr[mid] < a) lo = mid + 1; else hi = mid;
	}
	return -1;
}

static int mem_of(pid_t pid) {
	char p[64];
	snprintf(p, sizeof p, "/proc/%d/mem", pid);
	int fd = open(p, O_RDWR | O_CLOEXEC);
	if (fd < 0) die("open /proc/PID/mem");
	return fd;
}

static void load(const char *path) {
	FILE *f = fopen(path, "r");
	if (!f) die("ADDRS");
	size_t cap = 1 << 14;
	addr = malloc(cap * sizeof *addr);
	unsigned long long a;
	while (fscanf(f, "%llx", &a) == 1) {
		if (n == cap) addr = realloc(addr, (cap *= 2) * sizeof *addr);
		addr[n++] = a;
	}
	fclose(f);
	qsort(addr, n, sizeof *addr, cmp);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) if (k == 0 || addr[i] != addr[k - 1]) addr[k++] = addr[i];
	n = k;
	orig = malloc(n);
	hit = calloc(n, 1);
	if (!addr || !orig || !hit) die("malloc");
}

static void arm(pid_t pid) {
	int fd = mem_of(pid);
	uint8_t cc = 0xcc;
	for (size_t i = 0; i < n; i++) {
		if (pread(fd, &orig[i], 1, addr[i]) != 1) die("pread text");
		if (pwrite(fd, &cc, 1, addr[i]) != 1) die("pwrite int3");
	}
	close(fd);
}

// every breakpoint back to its byte, in a process about to be let go
static void disarm(pid_t pid) {
	int fd = mem_of(pid);
	for (size_t i = 0; i < n; i++)
		if (pwrite(fd, &orig[i], 1, addr[i]) != 1) die("pwrite restore");
	close(fd);
}

// the processes being traced
static pid_t live[256];
static int nlive;

static void track(pid_t pid) {
	for (int i = 0; i < nlive; i++) if (live[i] == pid) return;
	if (nlive < (int)(sizeof live / sizeof *live)) live[nlive++] = pid;
}

static void untrack(pid_t pid) {
	for (int i = 0; i < nlive; i++) if (live[i] == pid) { live[i] = live[--nlive]; return; }
}

// a trap at a breakpoint: put the byte back in this process, step back
static int on_trap(pid_t pid, FILE *out) {
	struct user_regs_struct regs;
	if (ptrace(PTRACE_GETREGS, pid, 0, &regs) < 0) return 0;
	long i = find(regs.rip - 1);
	if (i < 0) return 0;
	int fd = mem_of(pid);
	if (pwrite(fd, &orig[i], 1, addr[i]) != 1) die("pwrite restore");
	close(fd);
	regs.rip -= 1;
	if (ptrace(PTRACE_SETREGS, pid, 0, &regs) < 0) die("PTRACE_SETREGS");
	if (!hit[i]) {
		hit[i] = 1;
		fprintf(out, "%llx\n", (unsigned long long)addr[i]);
	}
	return 1;
}

int main(int argc, char **argv) {
	if (argc < 5 || strcmp(argv[3], "--") != 0) {
		fprintf(stderr, "usage: entrytrace ADDRS OUT -- CMD [ARG...]\n");
		return 2;
	}
	load(argv[1]);
	FILE *out = fopen(argv[2], "a");
	if (!out) die("OUT");
	pid_t root = fork();
	if (root < 0) die("fork");
	if (root == 0) {
		if (ptrace(PTRACE_TRACEME, 0, 0, 0) < 0) die("PTRACE_TRACEME");
		raise(SIGSTOP);
		execvp(argv[4], argv + 4);
		die("execvp");
	}
	int status, rc = 0, root_execs = 0, root_gone = 0;
	if (waitpid(root, &status, 0) < 0) die("waitpid");
	long opts = PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK |
		    PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL;
	if (ptrace(PTRACE_SETOPTIONS, root, 0, opts) < 0) die("PTRACE_SETOPTIONS");
	ptrace(PTRACE_CONT, root, 0, 0);
	for (;;) {
		pid_t pid = waitpid(-1, &status, __WALL);
		if (pid < 0) {
			if (errno == ECHILD) break;
			die("waitpid");
		}
		if (WIFEXITED(status) || WIFSIGNALED(status)) {
			untrack(pid);
			if (pid != root) continue;
			rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
			// what the command left running (a created container's
			// init waiting for `start`) goes on untraced: stop each,
			// take the breakpoints out, let it go
			root_gone = 1;
			for (int i = 0; i < nlive; i++) kill(live[i], SIGSTOP);
			if (nlive == 0) break;
			continue;
		}
		if (!WIFSTOPPED(status)) continue;
		track(pid);
		int sig = WSTOPSIG(status), event = status >> 16, deliver = 0;
		if (root_gone) {
			struct user_regs_struct regs;
			if (event == 0 && sig == SIGTRAP && ptrace(PTRACE_GETREGS, pid, 0, &regs) == 0 && find(regs.rip - 1) >= 0) {
				regs.rip -= 1;
				ptrace(PTRACE_SETREGS, pid, 0, &regs);
			}
			disarm(pid);
			ptrace(PTRACE_DETACH, pid, 0, 0);
			kill(pid, SIGCONT); // drops the SIGSTOP if it is still pending
			untrack(pid);
			if (nlive == 0) break;
			continue;
		}
		if (event == PTRACE_EVENT_EXEC) {
			// the root's first execve is the binary under trace; any
			// other is a container's program: let that process go
			if (pid == root && root_execs++ == 0) arm(pid);
			else { ptrace(PTRACE_DETACH, pid, 0, 0); untrack(pid); continue; }
		} else if (event == 0 && sig == SIGTRAP) {
			if (!on_trap(pid, out)) deliver = sig;
		} else if (event == 0 && sig != SIGSTOP) {
			deliver = sig;
		}
		ptrace(PTRACE_CONT, pid, 0, deliver);
	}
	fclose(out);
	return rc;
}
