/*
 * floor.c -- the reference floor for scripts/bench.sh: the kernel work of the
 * benchmark's default container (`runc spec`, process /bin/true, terminal
 * false, linux.cgroupsPath /skiff-bench-PID) and nothing else.  No JSON, no
 * config parsing, no state beyond two small files, no error reporting beyond
 * perror: every figure the benchmark prints for a runtime is read against
 * this program on the same machine.  Built by `just bench`:
 *
 *     cc -O2 -static -Wall -Wextra -o target/bench/floor bench/floor.c
 *
 * Modes (mirroring the runtime commands bench.sh times):
 *
 *     floor run    CGROUP ROOTFS [ARGS...]           clone, set up, exec, wait, clean up;
 *                                                    exits with the container's status
 *     floor create STATEDIR CGROUP ROOTFS [ARGS...]  set up up to just before execve; the
 *                                                    init blocks on STATEDIR/exec.fifo; the
 *                                                    parent writes STATEDIR/state and exits
 *                                                    (the init is orphaned to the subreaper)
 *     floor start  STATEDIR                          open + read the fifo to its end (the init execs)
 *     floor state  STATEDIR                          read the state file, check the pid, print
 *     floor exec   STATEDIR [ARGS...]                setns into the init's namespaces and
 *                                                    cgroups, fork, exec, wait
 *     floor delete STATEDIR                          SIGKILL the init if alive, wait for it
 *                                                    (pidfd), rmdir the cgroups, remove STATEDIR
 *
 * ARGS default to /bin/true.  CGROUP is the cgroupsPath ("/skiff-bench-123").
 *
 * What it does NOT do (the runtimes' own work, which is what the benchmark
 * measures on top of this): parse config.json, validate it, resolve paths
 * safely against symlinks (openat2 / O_PATH walks), check the id, lock the
 * state dir, write the OCI state JSON, seccomp, hooks, the console, sysctls,
 * AppArmor/SELinux labels, user namespaces, and the "runc init"-style
 * re-exec or helper processes.  It does the cgroup v1 devices rules of the
 * spec's default (deny all, allow the default devices) as runtimes must.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NS_FLAGS (CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNS | CLONE_NEWNET)
#define MAXH 32

/* the cgroup this process created, removed (best effort) when it fails */
static const char *owned_cg;
static pid_t owner;
static void cgroup_remove_quiet(const char *cg);

static void die(const char *what)
{
	perror(what);
	if (owned_cg && getpid() == owner)
		cgroup_remove_quiet(owned_cg);
	exit(120);
}

static void dief(const char *fmt, const char *arg)
{
	fprintf(stderr, "floor: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	exit(120);
}

/* snprintf that refuses to truncate */
__attribute__((format(printf, 3, 4)))
static void pathf(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vsnprintf(buf, n, fmt, ap);
	va_end(ap);
	if (r < 0 || (size_t)r >= n)
		dief("%s", "path too long");
}

/* ---- cgroup hierarchies (the runtime: parse /proc/self/mountinfo) -------- */
struct hier {
	char mnt[256];   /* /sys/fs/cgroup/cpu */
	char name[64];   /* cpu (the mount point's last component) */
	int v2;
	int devices;
	int cpuset;
};
static struct hier H[MAXH];
static int nh;

static void find_hierarchies(void)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[1024];
	if (!f)
		die("open /proc/self/mountinfo");
	while (fgets(line, sizeof line, f)) {
		char mnt[256], fstype[64], opts[512];
		char *sep = strstr(line, " - ");
		if (!sep || sscanf(line, "%*s %*s %*s %*s %255s", mnt) != 1 ||
		    sscanf(sep + 3, "%63s %*s %511s", fstype, opts) != 2)
			continue;
		int v2 = strcmp(fstype, "cgroup2") == 0;
		if ((!v2 && strcmp(fstype, "cgroup") != 0) || nh == MAXH)
			continue;
		struct hier *h = &H[nh++];
		pathf(h->mnt, sizeof h->mnt, "%s", mnt);
		const char *slash = strrchr(mnt, '/');
		pathf(h->name, sizeof h->name, "%s", slash ? slash + 1 : mnt);
		h->v2 = v2;
		h->devices = !v2 && strstr(opts, "devices") != NULL;
		h->cpuset = !v2 && strstr(opts, "cpuset") != NULL;
	}
	fclose(f);
	if (nh == 0)
		dief("%s", "no cgroup hierarchy mounted");
}

/* a pure v2 host: only the cgroup2 mount; hybrid: v1 hierarchies + unified */
static int pure_v2(void)
{
	return nh == 1 && H[0].v2;
}

static void write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, s, strlen(s)) != (ssize_t)strlen(s))
		die(path);
	close(fd);
}

/* The runtime's cgroup apply: mkdir in every hierarchy, the default devices
 * rules (spec: deny rwm; the runtime adds the default devices), join. */
static void cgroup_create(const char *cg)
{
	char p[512];
	owned_cg = cg;
	owner = getpid();
	for (int i = 0; i < nh; i++) {
		pathf(p, sizeof p, "%s%s", H[i].mnt, cg);
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			die(p);
		if (H[i].cpuset) {
			/* a v1 cpuset starts empty: copy the parent's cpus and mems */
			static const char *f[] = {"cpuset.cpus", "cpuset.mems"};
			for (int j = 0; j < 2; j++) {
				char q[512], v[256];
				pathf(q, sizeof q, "%s/%s", H[i].mnt, f[j]);
				int fd = open(q, O_RDONLY | O_CLOEXEC);
				ssize_t n = fd < 0 ? -1 : read(fd, v, sizeof v - 1);
				if (n < 0)
					die(q);
				close(fd);
				v[n] = 0;
				pathf(q, sizeof q, "%s%s/%s", H[i].mnt, cg, f[j]);
				write_file(q, v);
			}
		}
		if (H[i].devices) {
			static const char *allow[] = {
				"c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm",
				"c 1:8 rwm", "c 1:9 rwm", "c 5:0 rwm", "c 5:1 rwm",
				"c 5:2 rwm", "c 136:* rwm", "c 10:200 rwm",
			};
			pathf(p, sizeof p, "%s%s/devices.deny", H[i].mnt, cg);
			write_file(p, "a");
			pathf(p, sizeof p, "%s%s/devices.allow", H[i].mnt, cg);
			for (size_t j = 0; j < sizeof allow / sizeof *allow; j++)
				write_file(p, allow[j]);
		}
	}
}

/* The calling process joins the cgroup itself: "0" into each v1 hierarchy's
 * `tasks` (a thread moving itself skips the kernel's process-wide lock, whose
 * taking waits for an RCU grace period after an idle moment); the cgroup2
 * hierarchy is joined at the clone (CLONE_INTO_CGROUP, `born_in`) or, failing
 * that, through its cgroup.procs.  As skiff does; a runtime that writes the
 * init's pid from outside (runc, crun) waits for that grace period. */
static void cgroup_join_self(const char *cg, int born_in)
{
	char p[512];
	for (int i = 0; i < nh; i++) {
		if (H[i].v2 && born_in)
			continue;
		pathf(p, sizeof p, "%s%s/%s", H[i].mnt, cg, H[i].v2 ? "cgroup.procs" : "tasks");
		write_file(p, "0");
	}
}

/* an O_PATH fd of the container's cgroup2 directory, or -1 */
static int cgroup2_fd(const char *cg)
{
	char p[512];
	for (int i = 0; i < nh; i++)
		if (H[i].v2) {
			pathf(p, sizeof p, "%s%s", H[i].mnt, cg);
			return open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
		}
	return -1;
}

/* The runtime's cgroup removal (delete / the end of run): rmdir everywhere,
 * retrying while the last task's exit is still being accounted (EBUSY). */
static void cgroup_remove(const char *cg)
{
	char p[512];
	for (int i = 0; i < nh; i++) {
		pathf(p, sizeof p, "%s%s", H[i].mnt, cg);
		for (int tries = 0; rmdir(p) < 0; tries++) {
			if (errno == ENOENT)
				break;
			if (errno != EBUSY || tries > 1000)
				die(p);
			struct timespec ts = {0, 100000};
			nanosleep(&ts, NULL);
		}
	}
}

static void cgroup_remove_quiet(const char *cg)
{
	char p[512];
	for (int i = 0; i < nh; i++)
		if (snprintf(p, sizeof p, "%s%s", H[i].mnt, cg) < (int)sizeof p)
			(void)rmdir(p);
}

/* ---- the container's mounts (the runtime's rootfs setup) ----------------- */
static void mnt(const char *src, const char *dst, const char *type, unsigned long fl, const char *data)
{
	if (mount(src, dst, type, fl, data) < 0)
		die(dst);
}

static void mkdir_p(const char *d)
{
	if (mkdir(d, 0755) < 0 && errno != EEXIST)
		die(d);
}

/* Everything from the runtime's `prepareRootfs` up to pivot_root, run in the
 * child (new mount namespace), cwd = the rootfs. */
static void setup_rootfs(const char *rootfs, const char *cg)
{
	char p[512];
	/* rootfsPropagation default: make the copy of the host's mounts rslave
	 * so nothing propagates back to the host */
	mnt(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL);
	/* the rootfs must be a mount point for pivot_root: bind it onto itself */
	mnt(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL);
	if (chdir(rootfs) < 0)
		die(rootfs);
	/* spec mounts, in `runc spec` order */
	mkdir_p("proc");
	mnt("proc", "proc", "proc", 0, NULL);
	mkdir_p("dev");
	mnt("tmpfs", "dev", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k");
	mkdir_p("dev/pts");
	mnt("devpts", "dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5");
	mkdir_p("dev/shm");
	mnt("shm", "dev/shm", "tmpfs", MS_NOSUID | MS_NOEXEC | MS_NODEV, "mode=1777,size=65536k");
	mkdir_p("dev/mqueue");
	mnt("mqueue", "dev/mqueue", "mqueue", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL);
	mkdir_p("sys");
	mnt("sysfs", "sys", "sysfs", MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RDONLY, NULL);
	/* /sys/fs/cgroup, type cgroup, ro: on v1 a tmpfs holding one read-only
	 * bind of the container's directory per hierarchy (no cgroup namespace);
	 * on v2 a read-only bind of the container's directory */
	const unsigned long base = MS_NOSUID | MS_NOEXEC | MS_NODEV;
	if (pure_v2()) {
		pathf(p, sizeof p, "%s%s", H[0].mnt, cg);
		mnt(p, "sys/fs/cgroup", NULL, MS_BIND | MS_REC, NULL);
		mnt(NULL, "sys/fs/cgroup", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | base, NULL);
	} else {
		mnt("tmpfs", "sys/fs/cgroup", "tmpfs", base, "mode=755");
		for (int i = 0; i < nh; i++) {
			char dst[512];
			if (H[i].v2)
				continue;
			pathf(p, sizeof p, "%s%s", H[i].mnt, cg);
			pathf(dst, sizeof dst, "sys/fs/cgroup/%s", H[i].name);
			mkdir_p(dst);
			mnt(p, dst, NULL, MS_BIND | MS_REC, NULL);
			mnt(NULL, dst, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | base, NULL);
		}
		mnt(NULL, "sys/fs/cgroup", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | base, NULL);
	}
	/* the default devices (mknod as root) and /dev's symlinks */
	static const struct { const char *n; int maj, min; } devs[] = {
		{"dev/null", 1, 3}, {"dev/zero", 1, 5}, {"dev/full", 1, 7},
		{"dev/random", 1, 8}, {"dev/urandom", 1, 9}, {"dev/tty", 5, 0},
	};
	umask(0);
	for (size_t i = 0; i < sizeof devs / sizeof *devs; i++)
		if (mknod(devs[i].n, S_IFCHR | 0666, makedev(devs[i].maj, devs[i].min)) < 0)
			die(devs[i].n);
	umask(022);
	static const char *links[][2] = {
		{"/proc/self/fd", "dev/fd"}, {"/proc/self/fd/0", "dev/stdin"},
		{"/proc/self/fd/1", "dev/stdout"}, {"/proc/self/fd/2", "dev/stderr"},
		{"pts/ptmx", "dev/ptmx"}, {"/proc/kcore", "dev/core"},
	};
	for (size_t i = 0; i < sizeof links / sizeof *links; i++)
		if (symlink(links[i][0], links[i][1]) < 0)
			die(links[i][1]);
}

/* pivot_root the way runc and crun do it: pivot_root(".", "."), then
 * detach the old root that is now stacked under "/" */
static void pivot(void)
{
	int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (oldroot < 0)
		die("open /");
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		die("pivot_root");
	if (fchdir(oldroot) < 0)
		die("fchdir");
	mnt(NULL, ".", NULL, MS_REC | MS_SLAVE, NULL);
	if (umount2(".", MNT_DETACH) < 0)
		die("umount old root");
	if (chdir("/") < 0)
		die("chdir /");
	close(oldroot);
}

/* linux.maskedPaths and linux.readonlyPaths of `runc spec` (after pivot_root) */
static void mask_and_readonly(void)
{
	static const char *masked[] = {
		"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
	};
	static const char *ro[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"};
	struct stat st;
	for (size_t i = 0; i < sizeof masked / sizeof *masked; i++) {
		if (stat(masked[i], &st) < 0) {
			if (errno == ENOENT)
				continue;
			die(masked[i]);
		}
		if (S_ISDIR(st.st_mode))
			mnt("tmpfs", masked[i], "tmpfs", MS_RDONLY, NULL);
		else
			mnt("/dev/null", masked[i], NULL, MS_BIND, NULL);
	}
	for (size_t i = 0; i < sizeof ro / sizeof *ro; i++) {
		struct statvfs sv;
		if (mount(ro[i], ro[i], NULL, MS_BIND | MS_REC, NULL) < 0) {
			if (errno == ENOENT)
				continue;
			die(ro[i]);
		}
		/* keep the flags the kernel locks (nosuid, nodev, noexec) */
		if (statvfs(ro[i], &sv) < 0)
			die(ro[i]);
		unsigned long keep = sv.f_flag & (ST_NOSUID | ST_NODEV | ST_NOEXEC);
		mnt(NULL, ro[i], NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC | keep, NULL);
	}
}

/* process.rlimits, hostname, the user, capabilities and noNewPrivileges of
 * `runc spec`: the runtime's finalizeNamespace */
static void finalize_process(void)
{
	static const int keep[] = {CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE};
	int last = CAP_LAST_CAP;
	char buf[16];
	int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, buf, sizeof buf - 1);
		if (n > 0) {
			buf[n] = 0;
			last = atoi(buf);
		}
		close(fd);
	}
	struct rlimit rl = {1024, 1024};
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		die("setrlimit");
	/* bounding set */
	for (int c = 0; c <= last; c++) {
		int k = 0;
		for (size_t i = 0; i < sizeof keep / sizeof *keep; i++)
			k |= keep[i] == c;
		if (!k && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0)
			die("PR_CAPBSET_DROP");
	}
	/* the user (uid 0, gid 0, no additional gids), keeping capabilities */
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		die("PR_SET_KEEPCAPS");
	if (setgroups(0, NULL) < 0 || setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
		die("set user");
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		die("PR_SET_KEEPCAPS");
	/* effective = permitted = the spec's set, inheritable empty; then ambient
	 * (raising fails without inheritable; runtimes ignore that, so do we) */
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof data);
	for (size_t i = 0; i < sizeof keep / sizeof *keep; i++) {
		data[keep[i] / 32].effective |= 1u << (keep[i] % 32);
		data[keep[i] / 32].permitted |= 1u << (keep[i] % 32);
	}
	if (syscall(SYS_capset, &hdr, data) < 0)
		die("capset");
	for (size_t i = 0; i < sizeof keep / sizeof *keep; i++)
		(void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, keep[i], 0, 0);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		die("PR_SET_NO_NEW_PRIVS");
}

static char *const default_args[] = {"/bin/true", NULL};
static char *const env[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm", NULL};

/* *born_in: the child was cloned into cgroup2 directory `cgfd` */
static pid_t clone_ns(unsigned long flags, int cgfd, int *born_in)
{
	struct clone_args ca;
	memset(&ca, 0, sizeof ca);
	ca.flags = flags;
	ca.exit_signal = SIGCHLD;
	*born_in = 0;
	if (cgfd >= 0) {
		ca.flags |= CLONE_INTO_CGROUP;
		ca.cgroup = (unsigned)cgfd;
		long r = syscall(SYS_clone3, &ca, sizeof ca);
		if (r >= 0) {
			*born_in = 1;
			return (pid_t)r;
		}
		ca.flags = flags;
		ca.cgroup = 0;
	}
	long r = syscall(SYS_clone3, &ca, sizeof ca);
	if (r < 0 && errno == ENOSYS)
		r = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
	if (r < 0)
		die("clone");
	return (pid_t)r;
}

/* The container's init: wait for the parent, join the cgroup, set up, then
 * (create) report ready and block on the fifo, or (run) exec right away. */
static void child(int go, int ready, const char *rootfs, const char *cg, int born_in, const char *fifo, char *const *args)
{
	char c;
	if (read(go, &c, 1) != 1)
		_exit(121);
	close(go);
	cgroup_join_self(cg, born_in);
	int fifofd = -1;
	if (fifo) {
		/* held as O_PATH across pivot_root, reopened through /proc/self/fd */
		fifofd = open(fifo, O_PATH | O_CLOEXEC);
		if (fifofd < 0)
			die(fifo);
	}
	setup_rootfs(rootfs, cg);
	pivot();
	mask_and_readonly();
	if (sethostname("runc", 4) < 0)
		die("sethostname");
	finalize_process();
	if (fifo) {
		char p[64];
		/* create returns once the init is ready */
		if (write(ready, "r", 1) != 1)
			_exit(121);
		close(ready);
		pathf(p, sizeof p, "/proc/self/fd/%d", fifofd);
		/* blocks until `start` opens the fifo for reading; the write end
		 * stays open until the execve closes it (O_CLOEXEC): `start` reads
		 * to the end, so it returns once the container's process runs, as
		 * runc's and skiff's do */
		int w = open(p, O_WRONLY | O_CLOEXEC);
		if (w < 0 || write(w, "0", 1) != 1)
			die("exec.fifo");
		close(fifofd);
	}
	execve(args[0], args, env);
	die(args[0]);
}

static int cmd_run_or_create(const char *statedir, const char *cg, const char *rootfs, char *const *args)
{
	char fifo[512] = "", p[512];
	int go[2], ready[2];
	find_hierarchies();
	if (statedir) {
		/* the state dir: mkdir fails if the id exists; the exec.fifo */
		if (mkdir(statedir, 0711) < 0)
			die(statedir);
		pathf(fifo, sizeof fifo, "%s/exec.fifo", statedir);
		if (mkfifo(fifo, 0622) < 0)
			die(fifo);
	}
	cgroup_create(cg);
	if (pipe2(go, O_CLOEXEC) < 0 || pipe2(ready, O_CLOEXEC) < 0)
		die("pipe");
	int born_in, cgfd = cgroup2_fd(cg);
	pid_t pid = clone_ns(NS_FLAGS, cgfd, &born_in);
	if (pid == 0) {
		close(go[1]);
		close(ready[0]);
		child(go[0], ready[1], rootfs, cg, born_in, statedir ? fifo : NULL, args);
	}
	if (cgfd >= 0)
		close(cgfd);
	close(go[0]);
	close(ready[1]);
	if (write(go[1], "g", 1) != 1)
		die("sync");
	close(go[1]);
	if (statedir) {
		char c;
		if (read(ready[0], &c, 1) != 1) {
			int st;
			waitpid(pid, &st, 0);
			cgroup_remove(cg);
			dief("%s", "the init failed before it was ready");
		}
		/* the state: pid, cgroup, rootfs (one small file) */
		pathf(p, sizeof p, "%s/state", statedir);
		FILE *f = fopen(p, "we");
		if (!f || fprintf(f, "%d\n%s\n%s\n", pid, cg, rootfs) < 0 || fclose(f) != 0)
			die(p);
		return 0;
	}
	close(ready[0]);
	int st;
	if (waitpid(pid, &st, 0) < 0)
		die("waitpid");
	cgroup_remove(cg);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

struct state {
	pid_t pid;
	char cg[256];
	char rootfs[512];
};

static void read_state(const char *statedir, struct state *s)
{
	char p[512];
	pathf(p, sizeof p, "%s/state", statedir);
	FILE *f = fopen(p, "re");
	if (!f || fscanf(f, "%d %255s %511s", &s->pid, s->cg, s->rootfs) != 3)
		dief("cannot read the state in %s", statedir);
	fclose(f);
}

static int cmd_start(const char *statedir)
{
	char p[512], c;
	pathf(p, sizeof p, "%s/exec.fifo", statedir);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die(p);
	if (read(fd, &c, 1) != 1)
		dief("%s: the init is gone", statedir);
	/* the end of the file: the init's execve closed its write end */
	if (read(fd, &c, 1) != 0)
		dief("%s: more than one byte in exec.fifo", statedir);
	close(fd);
	unlink(p);
	return 0;
}

static int cmd_state(const char *statedir)
{
	struct state s;
	char p[512];
	read_state(statedir, &s);
	pathf(p, sizeof p, "%s/exec.fifo", statedir);
	const char *status = kill(s.pid, 0) < 0 ? "stopped" : access(p, F_OK) == 0 ? "created" : "running";
	const char *id = strrchr(statedir, '/');
	printf("{\n  \"ociVersion\": \"1.0.2\",\n  \"id\": \"%s\",\n  \"pid\": %d,\n  \"status\": \"%s\",\n"
	       "  \"bundle\": \"%s\"\n}\n", id ? id + 1 : statedir, s.pid, status, s.rootfs);
	return 0;
}

static int cmd_delete(const char *statedir)
{
	struct state s;
	char p[512];
	read_state(statedir, &s);
	find_hierarchies();
	int pfd = (int)syscall(SYS_pidfd_open, s.pid, 0);
	if (pfd >= 0) {
		/* delete -f of a live init: kill it and wait until it is gone */
		if (syscall(SYS_pidfd_send_signal, pfd, SIGKILL, NULL, 0) < 0 && errno != ESRCH)
			die("pidfd_send_signal");
		struct pollfd pf = {pfd, POLLIN, 0};
		if (poll(&pf, 1, 10000) != 1)
			dief("%s: the init did not die", statedir);
		close(pfd);
	}
	cgroup_remove(s.cg);
	pathf(p, sizeof p, "%s/exec.fifo", statedir);
	unlink(p);
	pathf(p, sizeof p, "%s/state", statedir);
	unlink(p);
	if (rmdir(statedir) < 0)
		die(statedir);
	return 0;
}

/* exec: the runtime's setns into the init's namespaces, the cgroup join, a
 * fork for the pid namespace, the same process finalization, execve */
static int cmd_exec(const char *statedir, char *const *args)
{
	static const char *ns[] = {"ipc", "uts", "net", "pid", "mnt"};
	struct state s;
	char p[128];
	int fds[5];
	read_state(statedir, &s);
	find_hierarchies();
	/* join the container's v1 cgroups first (the paths are the host's); the
	 * exec'd process inherits them, and is born in the cgroup2 one */
	int born_in, cgfd = cgroup2_fd(s.cg);
	cgroup_join_self(s.cg, cgfd >= 0);
	for (int i = 0; i < 5; i++) {
		pathf(p, sizeof p, "/proc/%d/ns/%s", s.pid, ns[i]);
		if ((fds[i] = open(p, O_RDONLY | O_CLOEXEC)) < 0)
			die(p);
	}
	for (int i = 0; i < 5; i++) {
		if (setns(fds[i], 0) < 0)
			die(ns[i]);
		close(fds[i]);
	}
	pid_t pid = clone_ns(0, cgfd, &born_in);
	if (cgfd >= 0 && !born_in)
		dief("%s", "clone into the cgroup2 directory failed");
	if (pid == 0) {
		if (chdir("/") < 0)
			die("chdir /");
		finalize_process();
		execve(args[0], args, env);
		die(args[0]);
	}
	int st;
	if (waitpid(pid, &st, 0) < 0)
		die("waitpid");
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void usage(void)
{
	fprintf(stderr, "usage: floor run CGROUP ROOTFS [ARGS...]\n"
			"       floor create STATEDIR CGROUP ROOTFS [ARGS...]\n"
			"       floor start|state|delete STATEDIR\n"
			"       floor exec STATEDIR [ARGS...]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 3)
		usage();
	const char *cmd = argv[1];
	if (strcmp(cmd, "run") == 0 && argc >= 4)
		return cmd_run_or_create(NULL, argv[2], argv[3], argc > 4 ? argv + 4 : default_args);
	if (strcmp(cmd, "create") == 0 && argc >= 5)
		return cmd_run_or_create(argv[2], argv[3], argv[4], argc > 5 ? argv + 5 : default_args);
	if (strcmp(cmd, "start") == 0)
		return cmd_start(argv[2]);
	if (strcmp(cmd, "state") == 0)
		return cmd_state(argv[2]);
	if (strcmp(cmd, "delete") == 0)
		return cmd_delete(argv[2]);
	if (strcmp(cmd, "exec") == 0)
		return cmd_exec(argv[2], argc > 3 ? argv + 3 : default_args);
	usage();
	return 2;
}
