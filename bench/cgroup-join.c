/*
 * cgroup-join.c -- what moving a new process into its cgroup costs on a
 * cgroup v1 (or hybrid) host, the two ways a runtime can do it, after an
 * idle moment (docs/benchmarks.md, "The v1 cgroup join").
 *
 *     cc -O2 -Wall -Wextra -o target/bench/cgroup-join bench/cgroup-join.c
 *     target/bench/cgroup-join outside|self [ROUNDS] [IDLE_MS]
 *
 * Each round makes a directory in every hierarchy (cpuset filled in), forks
 * a child that waits on a pipe, and times the join:
 *   outside  the parent writes the child's pid to each cgroup.procs (runc,
 *            crun, and skiff before: the kernel's cgroup_threadgroup_rwsem
 *            is taken for writing, which after an idle moment waits for an
 *            RCU grace period);
 *   self     the child is cloned into its cgroup2 directory
 *            (CLONE_INTO_CGROUP) and writes 0 to each v1 `tasks` (a thread
 *            moving itself: no such lock).
 * then sleeps IDLE_MS (default 30) before the next round.  Prints the median.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXH 32
static char H[MAXH][256];
static int V2[MAXH], nh;

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void put(const char *path, const char *v)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, v, strlen(v)) < 0)
		die(path);
	close(fd);
}

static void hierarchies(void)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[1024];
	if (!f)
		die("/proc/self/mountinfo");
	while (fgets(line, sizeof line, f) && nh < MAXH) {
		char mnt[256], type[64];
		char *sep = strstr(line, " - ");
		if (!sep || sscanf(line, "%*s %*s %*s %*s %255s", mnt) != 1 || sscanf(sep + 3, "%63s", type) != 1)
			continue;
		if (strcmp(type, "cgroup") && strcmp(type, "cgroup2"))
			continue;
		V2[nh] = !strcmp(type, "cgroup2");
		snprintf(H[nh++], sizeof H[0], "%s", mnt);
	}
	fclose(f);
	if (nh < 2)
		fprintf(stderr, "cgroup-join: not a v1 host (%d hierarchies): the difference is v1's\n", nh), exit(2);
}

static void cpuset_fill(const char *h, const char *cg)
{
	static const char *f[] = {"cpuset.cpus", "cpuset.mems"};
	char p[512], v[256];
	for (int i = 0; i < 2; i++) {
		snprintf(p, sizeof p, "%.255s/%s", h, f[i]);
		int fd = open(p, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd < 0 ? -1 : read(fd, v, sizeof v - 1);
		if (n < 0)
			return; /* not the cpuset hierarchy */
		close(fd);
		v[n] = 0;
		snprintf(p, sizeof p, "%.255s/%.63s/%s", h, cg, f[i]);
		put(p, v);
	}
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	int self = argc > 1 && !strcmp(argv[1], "self");
	if (argc < 2 || (!self && strcmp(argv[1], "outside")))
		fprintf(stderr, "usage: cgroup-join outside|self [ROUNDS] [IDLE_MS]\n"), exit(2);
	int rounds = argc > 2 ? atoi(argv[2]) : 20, idle = argc > 3 ? atoi(argv[3]) : 30;
	double *t = calloc(rounds > 0 ? rounds : 1, sizeof *t);
	hierarchies();
	for (int r = 0; r < rounds; r++) {
		char cg[64], p[512];
		int v2fd = -1;
		snprintf(cg, sizeof cg, "cgroup-join-%d-%d", getpid(), r);
		for (int i = 0; i < nh; i++) {
			snprintf(p, sizeof p, "%.255s/%.63s", H[i], cg);
			if (mkdir(p, 0755) < 0)
				die(p);
			cpuset_fill(H[i], cg);
			if (V2[i])
				v2fd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
		}
		int go[2], back[2];
		if (pipe(go) < 0 || pipe(back) < 0)
			die("pipe");
		struct clone_args ca = {.exit_signal = SIGCHLD};
		if (self && v2fd >= 0) {
			ca.flags = CLONE_INTO_CGROUP;
			ca.cgroup = (unsigned)v2fd;
		}
		double t0 = now_ms();
		long pid = syscall(SYS_clone3, &ca, sizeof ca);
		if (pid < 0)
			die("clone3");
		if (pid == 0) {
			char c;
			if (read(go[0], &c, 1) != 1)
				_exit(1);
			if (self)
				for (int i = 0; i < nh; i++)
					if (!V2[i]) {
						snprintf(p, sizeof p, "%.255s/%.63s/tasks", H[i], cg);
						put(p, "0");
					}
			double d = now_ms() - t0;
			_exit(write(back[1], &d, sizeof d) == sizeof d ? 0 : 1);
		}
		if (!self) {
			char s[32];
			snprintf(s, sizeof s, "%ld", pid);
			for (int i = 0; i < nh; i++) {
				snprintf(p, sizeof p, "%.255s/%.63s/cgroup.procs", H[i], cg);
				put(p, s);
			}
		}
		if (write(go[1], "g", 1) != 1 || read(back[0], &t[r], sizeof t[r]) != sizeof t[r])
			die("child");
		waitpid(pid, NULL, 0);
		for (int i = 0; i < nh; i++) {
			snprintf(p, sizeof p, "%.255s/%.63s", H[i], cg);
			while (rmdir(p) < 0 && errno == EBUSY)
				usleep(100);
		}
		close(go[0]), close(go[1]), close(back[0]), close(back[1]);
		if (v2fd >= 0)
			close(v2fd);
		usleep(idle * 1000);
	}
	qsort(t, rounds, sizeof *t, cmp);
	printf("%s: clone + join of %d hierarchies, median %.3f ms over %d rounds %d ms apart\n", self ? "self" : "outside", nh, t[rounds / 2], rounds, idle);
	return 0;
}
