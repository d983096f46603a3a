/*
 * seccomp-probe: makes raw system calls inside a test container and prints
 * what came back, for crates/integration-tests/tests/seccomp.rs. Built
 * statically by build.rs (the busybox rootfs has no libc).
 *
 *   seccomp-probe sys NR [ARG...]     syscall(NR, ARG...) -> "ret=R errno=E"
 *   seccomp-probe trap NR [ARG...]    same, with a SIGSYS handler that prints
 *                                     "sigsys code=C syscall=N errno=E arch=A"
 *   seccomp-probe thread NR [ARG...]  the call in a second thread; the main
 *                                     thread prints "main-alive" after 300 ms
 *   seccomp-probe usr1 NR [ARG...]    same as sys, with a SIGUSR1 handler
 *                                     (no SA_RESTART) that prints "usr1"
 *   seccomp-probe status              the Seccomp lines of /proc/self/status
 *   seccomp-probe notify MESSAGE      sends MESSAGE in one datagram to
 *                                     $NOTIFY_SOCKET (sd_notify), prints "sent"
 *
 * ARGs are integers (strtoull base 0). Output goes to stdout, unbuffered.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long nr;
static unsigned long long args[6];

static void say(const char *s) { (void)!write(1, s, strlen(s)); }

static void call_and_print(void) {
	errno = 0;
	long r = syscall(nr, args[0], args[1], args[2], args[3], args[4], args[5]);
	int e = r == -1 ? errno : 0;
	printf("ret=%ld errno=%d\n", r, e);
}

static void on_sigsys(int sig, siginfo_t *si, void *uc) {
	(void)sig;
	(void)uc;
	char buf[128];
	snprintf(buf, sizeof buf, "sigsys code=%d syscall=%d errno=%d arch=%#x\n",
		 si->si_code, si->si_syscall, si->si_errno, si->si_arch);
	say(buf);
}

static void on_usr1(int sig) {
	(void)sig;
	say("usr1\n");
}

static void *thread_main(void *unused) {
	(void)unused;
	call_and_print();
	say("thread-returned\n");
	return NULL;
}

static int status(void) {
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	if (!f) {
		perror("/proc/self/status");
		return 1;
	}
	while (fgets(line, sizeof line, f))
		if (strncmp(line, "Seccomp", 7) == 0)
			fputs(line, stdout);
	fclose(f);
	return 0;
}

static int notify(const char *msg) {
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (!path || strlen(path) >= sizeof addr.sun_path) {
		fprintf(stderr, "no usable NOTIFY_SOCKET\n");
		return 1;
	}
	strcpy(addr.sun_path, path);
	int s = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (s < 0 || sendto(s, msg, strlen(msg), 0, (struct sockaddr *)&addr, sizeof addr) < 0) {
		perror("sendto NOTIFY_SOCKET");
		return 1;
	}
	say("sent\n");
	return 0;
}

int main(int argc, char **argv) {
	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc >= 2 && strcmp(argv[1], "status") == 0)
		return status();
	if (argc == 3 && strcmp(argv[1], "notify") == 0)
		return notify(argv[2]);
	if (argc < 3 || argc > 9) {
		fprintf(stderr, "usage: %s sys|trap|thread|usr1 NR [ARG...] | status\n", argv[0]);
		return 2;
	}
	nr = strtol(argv[2], NULL, 0);
	for (int i = 3; i < argc; i++)
		args[i - 3] = strtoull(argv[i], NULL, 0);

	const char *mode = argv[1];
	if (strcmp(mode, "sys") == 0) {
		call_and_print();
	} else if (strcmp(mode, "trap") == 0) {
		struct sigaction sa = {0};
		sa.sa_sigaction = on_sigsys;
		sa.sa_flags = SA_SIGINFO;
		sigaction(SIGSYS, &sa, NULL);
		call_and_print();
	} else if (strcmp(mode, "usr1") == 0) {
		struct sigaction sa = {0};
		sa.sa_handler = on_usr1;
		sigaction(SIGUSR1, &sa, NULL);
		call_and_print();
	} else if (strcmp(mode, "thread") == 0) {
		pthread_t t;
		if (pthread_create(&t, NULL, thread_main, NULL) != 0) {
			say("pthread_create failed\n");
			return 3;
		}
		struct timespec ts = {0, 300 * 1000 * 1000};
		nanosleep(&ts, NULL);
		say("main-alive\n");
		_exit(0);
	} else {
		fprintf(stderr, "unknown mode %s\n", mode);
		return 2;
	}
	return 0;
}
