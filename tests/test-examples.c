/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The example programs run as real processes: echo-server with real TCP
 * clients (in the main thread and with IOThreads, stopped by SIGINT or
 * SIGTERM), embed-poll to completion and interrupted.  The programs' paths
 * come from CMake (ECHO_SERVER_PATH, EMBED_POLL_PATH); the engine is
 * $AIOCTX_ENGINE, passed on as --engine.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test-util.h"

#ifndef ECHO_SERVER_PATH
#error "ECHO_SERVER_PATH must name the echo-server program"
#endif
#ifndef EMBED_POLL_PATH
#error "EMBED_POLL_PATH must name the embed-poll program"
#endif

#define WAIT_MS 20000
#define CLIENTS 50
#define ROUNDS 100
#define MSG_SIZE 64

/* ------------------------------------------------------------------ */
/* child processes                                                     */
/* ------------------------------------------------------------------ */

typedef struct Child {
    pid_t pid;
    int out_fd;     /* the child's stdout */
    char out[16384];
    size_t len;
} Child;

/* Start prog with args (NULL-terminated), plus --engine from the env. */
static void child_start(Child *c, const char *prog, const char *const *args)
{
    const char *engine = getenv("AIOCTX_ENGINE");
    const char *argv[16];
    int n = 0, p[2];

    argv[n++] = prog;
    for (; *args && n < 12; args++) {
        argv[n++] = *args;
    }
    if (engine && *engine) {
        argv[n++] = "--engine";
        argv[n++] = engine;
    }
    argv[n] = NULL;

    memset(c, 0, sizeof(*c));
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    c->pid = fork();
    ck_assert_int_ge(c->pid, 0);
    if (c->pid == 0) {
        dup2(p[1], STDOUT_FILENO);
        execv(prog, (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    c->out_fd = p[0];
    fcntl(c->out_fd, F_SETFL, O_NONBLOCK);
}

/* Read what the child printed so far, waiting up to timeout_ms for more. */
static bool child_read(Child *c, int timeout_ms)
{
    struct pollfd pfd = { .fd = c->out_fd, .events = POLLIN };
    ssize_t n;

    if (test_poll(&pfd, 1, timeout_ms) <= 0) {
        return false;
    }
    n = test_read(c->out_fd, c->out + c->len, sizeof(c->out) - 1 - c->len);
    if (n <= 0) {
        return false;
    }
    c->len += n;
    c->out[c->len] = '\0';
    return true;
}

/* Wait until the output contains needle; returns where, or fails. */
static const char *child_expect(Child *c, const char *needle)
{
    int64_t deadline = test_now_ms() + WAIT_MS;
    const char *at;

    while (!(at = strstr(c->out, needle)) && test_now_ms() < deadline) {
        child_read(c, 100);
    }
    ck_assert_msg(at != NULL, "no \"%s\" in the output:\n%s", needle,
                  c->out);
    return at;
}

/* Wait for the child to exit (bounded) and collect its output. */
static int child_wait(Child *c)
{
    int64_t deadline = test_now_ms() + WAIT_MS;
    int status = 0;
    pid_t ret;

    while ((ret = test_waitpid(c->pid, &status, WNOHANG)) == 0 &&
           test_now_ms() < deadline) {
        child_read(c, 10);
    }
    if (ret == 0) {
        kill(c->pid, SIGKILL);
        test_waitpid(c->pid, &status, 0);
        ck_abort_msg("the child did not exit; output:\n%s", c->out);
    }
    while (child_read(c, 0)) {
    }
    close(c->out_fd);
    return status;
}

static void assert_exit_status(Child *c, int status, int want)
{
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == want,
                  "exit status 0x%x, wanted exit(%d); output:\n%s", status,
                  want, c->out);
}

/* ------------------------------------------------------------------ */
/* echo clients                                                        */
/* ------------------------------------------------------------------ */

static int client_connect(int port)
{
    struct sockaddr_in sin = { .sin_family = AF_INET,
                               .sin_port = htons(port) };
    struct timeval tv = { .tv_sec = WAIT_MS / 1000 };
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    ck_assert_int_ge(fd, 0);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_msg(test_connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0,
                  "connect to port %d: %s", port, strerror(errno));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    return fd;
}

/* A message that names its client and round, different in every byte. */
static void make_message(unsigned char *msg, uint32_t client, uint32_t round)
{
    memcpy(msg, &client, 4);
    memcpy(msg + 4, &round, 4);
    for (int i = 8; i < MSG_SIZE; i++) {
        msg[i] = (unsigned char)(client * 31 + round * 7 + i);
    }
}

static void send_all(int fd, const unsigned char *buf, size_t len)
{
    while (len) {
        ssize_t n = test_send(fd, buf, len, MSG_NOSIGNAL);

        ck_assert_msg(n > 0, "send: %s", n < 0 ? strerror(errno) : "0");
        buf += n;
        len -= n;
    }
}

static void recv_all(int fd, unsigned char *buf, size_t len)
{
    while (len) {
        ssize_t n = test_recv(fd, buf, len, 0);

        ck_assert_msg(n > 0, "recv: %s",
                      n < 0 ? strerror(errno) : "connection closed");
        buf += n;
        len -= n;
    }
}

/* CLIENTS connections, ROUNDS ping-pongs each, all in flight together. */
static void echo_clients(int port, int fds[CLIENTS])
{
    unsigned char msg[MSG_SIZE], back[MSG_SIZE];

    for (int i = 0; i < CLIENTS; i++) {
        fds[i] = client_connect(port);
    }
    for (uint32_t round = 0; round < ROUNDS; round++) {
        for (uint32_t i = 0; i < CLIENTS; i++) {
            make_message(msg, i, round);
            send_all(fds[i], msg, MSG_SIZE);
        }
        for (uint32_t i = 0; i < CLIENTS; i++) {
            make_message(msg, i, round);
            recv_all(fds[i], back, MSG_SIZE);
            ck_assert_msg(memcmp(msg, back, MSG_SIZE) == 0,
                          "client %u round %u: echo differs", i, round);
        }
    }
}

static const char *const echo_threads[] = { "0", "1", "2", "2" };
static const int echo_signals[] = { SIGINT, SIGINT, SIGINT, SIGTERM };

/* The server, its clients, then a signal with half the clients open. */
START_TEST(test_echo_server)
{
    const char *threads = echo_threads[_i];
    const char *const args[] = { "--port", "0", "--threads", threads, NULL };
    int fds[CLIENTS], port = 0, status;
    unsigned long served = 0;
    const char *at;
    Child c;

    child_start(&c, ECHO_SERVER_PATH, args);
    at = child_expect(&c, "listening on 127.0.0.1:");
    ck_assert_int_eq(sscanf(at, "listening on 127.0.0.1:%d", &port), 1);
    ck_assert_int_gt(port, 0);

    echo_clients(port, fds);
    for (int i = 0; i < CLIENTS / 2; i++) {
        close(fds[i]);
    }
    /* SIGUSR1: the loop metrics of every context, and it goes on. */
    ck_assert_int_eq(kill(c.pid, SIGUSR1), 0);
    child_expect(&c, "echo-server: stats main: iterations ");
    if (strcmp(threads, "0") != 0) {
        child_expect(&c, "echo-server: stats thread 0: iterations ");
    }
    ck_assert_int_eq(kill(c.pid, echo_signals[_i]), 0);
    status = child_wait(&c);
    assert_exit_status(&c, status, 0);

    /* The connections still open were closed by the server. */
    for (int i = CLIENTS / 2; i < CLIENTS; i++) {
        char byte;

        ck_assert_int_eq(test_recv(fds[i], &byte, 1, 0), 0);
        close(fds[i]);
    }
    at = child_expect(&c, "echo-server: served ");
    ck_assert_int_eq(sscanf(at, "echo-server: served %lu", &served), 1);
    ck_assert_int_eq(served, CLIENTS);
    /* At exit the metrics again: the serving context counted its work. */
    at = strstr(c.out, "echo-server: stats ");
    ck_assert_ptr_nonnull(at);
    at = strstr(at + 1, strcmp(threads, "0") ? "echo-server: stats thread 0:"
                                            : "echo-server: stats main:");
    ck_assert_ptr_nonnull(at);
    {
        unsigned long fd_calls = 0;
        const char *f = strstr(at, "fd callbacks ");

        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(sscanf(f, "fd callbacks %lu", &fd_calls), 1);
        /* At least one accept and one read per client on one thread. */
        if (strcmp(threads, "2") != 0) {
            ck_assert_uint_ge(fd_calls, 2 * CLIENTS);
        }
    }
    if (strcmp(threads, "2") == 0) {
        child_expect(&c, "(engine ");
        child_expect(&c, "2 IOThreads)");
        child_expect(&c, "thread 0 served ");
        child_expect(&c, "thread 1 served ");
    }
}
END_TEST

START_TEST(test_echo_server_help_and_errors)
{
    const char *const help[] = { "--help", NULL };
    const char *const bad[] = { "--threads", "lots", NULL };
    Child c;

    child_start(&c, ECHO_SERVER_PATH, help);
    assert_exit_status(&c, child_wait(&c), 0);
    for (int i = 0; i < 5; i++) {
        static const char *const opts[] = { "--port", "--bind", "--engine",
                                            "--threads", "--help" };

        ck_assert_msg(strstr(c.out, opts[i]), "--help lacks %s:\n%s",
                      opts[i], c.out);
    }
    child_start(&c, ECHO_SERVER_PATH, bad);
    assert_exit_status(&c, child_wait(&c), 2);
}
END_TEST

/* ------------------------------------------------------------------ */
/* embed-poll                                                          */
/* ------------------------------------------------------------------ */

START_TEST(test_embed_poll_runs)
{
    const char *const args[] = { "--delay", "20", NULL };
    Child c;

    child_start(&c, EMBED_POLL_PATH, args);
    assert_exit_status(&c, child_wait(&c), 0);
    child_expect(&c, "1. bottom half ran");
    child_expect(&c, "2. timer fired");
    child_expect(&c, "3. fd handler read \"ping\"");
    child_expect(&c, "4. foreign loop read \"pong\"");
    child_expect(&c, "4 of 4 steps done");
}
END_TEST

START_TEST(test_embed_poll_interrupted)
{
    const char *const args[] = { "--delay", "600000", NULL };
    const char *const help[] = { "--help", NULL };
    Child c;

    child_start(&c, EMBED_POLL_PATH, args);
    child_expect(&c, "1. bottom half ran");
    ck_assert_int_eq(kill(c.pid, SIGINT), 0);
    assert_exit_status(&c, child_wait(&c), 1);
    child_expect(&c, "interrupted");
    child_expect(&c, "1 of 4 steps done");

    child_start(&c, EMBED_POLL_PATH, help);
    assert_exit_status(&c, child_wait(&c), 0);
    child_expect(&c, "--delay");
}
END_TEST

static Suite *examples_suite(void)
{
    Suite *s = suite_create("examples");
    TCase *tc = tcase_create("echo-server");

    tcase_set_timeout(tc, 100);
    tcase_add_loop_test(tc, test_echo_server, 0, 4);
    tcase_add_test(tc, test_echo_server_help_and_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("embed-poll");
    tcase_add_test(tc, test_embed_poll_runs);
    tcase_add_test(tc, test_embed_poll_interrupted);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    return test_main(examples_suite());
}
