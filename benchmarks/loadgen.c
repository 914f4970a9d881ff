/*
 * loadgen.c -- the compiled load generator of the ChattyCat benchmarks.
 *
 * One process, one epoll loop, many non-blocking client connections, speaking
 * either ChattyCat's protocol (4-byte big-endian length + JSON object) or IRC
 * lines (NICK/USER, JOIN, PRIVMSG), so that ChattyCat, the asyncio reference
 * server and ngIRCd are driven by the same code with the same room sizes,
 * senders, windows and text sizes. run.py builds it with `cc -O2` at benchmark
 * time and drives it over stdin/stdout:
 *
 *   loadgen ... > "ready {json}"   every client connected, registered and in its
 *                                   room, and the join traffic has died down
 *   harness  -> "go"                start the measured phase
 *   loadgen  -> "result {json}"     the figures of the phase
 *   harness  -> "quit" (or EOF)     close every connection and exit
 *
 * Why C: at a million deliveries a second a Python client spends its whole
 * core parsing frames and measures itself, not the server. Even so the
 * generator reports its own CPU time, and the harness prints any figure taken
 * with it above 80% of its core as a lower bound.
 *
 * How a message is timed: its text starts with "~<sender> <number> <send
 * time in ns, CLOCK_MONOTONIC>" and is padded with 'x' to --size bytes.
 * Every receiver finds the marker with memmem() and computes the latency of
 * its own copy without parsing the JSON; processes on one machine share the
 * monotonic clock, so this holds across load-generator processes.
 *
 * Windows ("as fast as the server allows"): every sender keeps --window
 * messages in flight and sends the next one when one of its messages is known
 * to have gone through. ChattyCat (and the reference server) echo a message to
 * its sender, and that copy is the acknowledgement. IRC servers do not echo a
 * PRIVMSG to its sender, so one member that never sends (the last client, the
 * "witness") releases the sender's window slot when it receives the copy:
 * the server has then taken the message and queued it for the room. In both
 * cases every copy received counts as a delivery; on IRC a message to a room of
 * N has N-1 copies (the sender's own is not sent), on ChattyCat N.
 *
 * Several servers (--port P1,P2,...): client k connects to the (k mod n)-th
 * port, so clients and senders are spread evenly over the nodes of a cluster.
 * --server-pid takes a list too (their CPU times are summed: every process of
 * the server side), and --aux-pid names processes whose CPU is reported apart
 * (aux_cpu_s: the Redis a cluster shares).
 *
 * Paced sending (--rate R): the senders share R messages a second, round
 * robin, whatever comes back; used to measure latency below saturation.
 *
 * Modes of the measured phase:
 *   fan-out (--senders > 0)   --warmup s of sending, then --duration s counted;
 *                             then the in-flight messages drain
 *   idle   (--senders 0)      hold every connection for --duration s, answer
 *                             pings; report how many are still open
 *   storm  (--storm)          every client, so far alone in a room of its
 *                             own, joins --room at once; time until each has
 *                             its roster and history (IRC: end of NAMES)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#ifdef WITH_TLS
#include <openssl/err.h>
#include <openssl/ssl.h>
#endif

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/* Loopback source addresses: one 127.0.0.x per this many connections, so that
 * more clients than the ephemeral port range holds (about 28,000) can connect. */
#define CONNS_PER_SOURCE 25000
#define READ_CHUNK (256 * 1024)
#define MAX_EVENTS 1024
#define RING 16384               /* per-sender slots for whole-message latency */
#define DRAIN_TIMEOUT_NS 10000000000LL
#define SETTLE_MAX_NS 30000000000LL
#define MAX_CONNECT_ATTEMPTS 5
#define OUTBUF_SKIP_BYTES (1 << 20) /* paced mode: skip a sender this far behind */
#define ERRORS_SHOWN 5
#define MAX_PORTS 64
#define MAX_PIDS 64

enum { CHATTY, IRC };
enum { ST_NEW, ST_CONNECTING, ST_REGISTERING, ST_READY, ST_CLOSED };
enum { PH_SETUP, PH_SETTLE, PH_WAIT_GO, PH_RUN, PH_DRAIN, PH_WAIT_QUIT };

typedef struct {
    int fd, gidx, state, attempts, in_flight, want_out, dirty, storm_ready;
    uint64_t sent;
    char *rbuf, *wbuf;
    size_t rlen, rcap, wlen, wcap;
#ifdef WITH_TLS
    SSL *ssl;
#endif
} conn_t;

typedef struct { uint64_t msgno; int64_t sent_ns; int got; } slot_t;

/* Log-linear latency histogram in microseconds: exact below 2048 us, then
 * 1024 buckets per power of two (0.1% resolution). */
#define HEXACT 2048
#define HBUCKETS (HEXACT + 40 * 1024)
typedef struct { uint64_t n, max; uint32_t *b; } hist_t;

static struct {
    int proto, tls, clients, first, total, senders, window, size, storm, own_rooms;
    int concurrency, track;
    double rate, duration, warmup, setup_timeout, settle;
    const char *host, *room, *prefix;
    int port, ports[MAX_PORTS], n_ports, n_server_pids, n_aux_pids;
    long server_pids[MAX_PIDS], aux_pids[MAX_PIDS];
} opt = {
    .proto = CHATTY, .clients = 100, .total = 0, .senders = 10, .window = 8,
    .size = 100, .concurrency = 100, .duration = 10, .warmup = 1,
    .setup_timeout = 300, .settle = 0.3, .host = "127.0.0.1", .room = "lobby", .prefix = "u",
    .port = 9999,
};

static conn_t *conns;
static int ep, phase = PH_SETUP;
static int next_to_open, in_progress, n_ready, n_failed, n_closed, n_storm_ready;
static int witness = -1;              /* IRC window mode: local index of the witness */
static int *dirty_list, n_dirty;
static char *readbuf;
static slot_t *slots;                 /* senders x RING, with --track */
static hist_t h_copy, h_all;
static int64_t t_start, t_ready, t_go, t_w0, t_w1, t_end, t_last_rx, t_storm_ready,
    t_storm_notices;
static uint64_t copies_total, copies_win, acks_win, sent_total, joined_total, paced_sent, errors_total;
static double srv_cpu_w0 = -1, srv_cpu_w1 = -1, aux_cpu_w0 = -1, aux_cpu_w1 = -1, my_cpu_w0,
    my_cpu_w1;
static int copies_per_msg, sending, rlimit_nofile, errors_shown, window_opened;
static char pad[8192];
#ifdef WITH_TLS
static SSL_CTX *tls_ctx;
#endif

/* -- small helpers ------------------------------------------------------------ */

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loadgen: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n);
    if (!q && n) die("out of memory");
    return q;
}

static void note_error(int local, const char *what, size_t len) {
    errors_total++;
    if (errors_shown++ < ERRORS_SHOWN)
        fprintf(stderr, "loadgen: client %d: %.*s\n", conns[local].gidx, (int)(len > 200 ? 200 : len),
                what);
}

static double self_cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* utime + stime of one process from /proc (-1 when unknown). */
static double pid_cpu_s(long pid) {
    char path[64], buf[2048];
    if (pid <= 0) return -1;
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p) return -1;
    unsigned long long ut = 0, st = 0;
    /* after ")": state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* The summed CPU time of a list of processes (-1 when any is unknown). */
static double pids_cpu_s(const long *pids, int n) {
    double sum = 0;
    if (n == 0) return -1;
    for (int k = 0; k < n; k++) {
        double v = pid_cpu_s(pids[k]);
        if (v < 0) return -1;
        sum += v;
    }
    return sum;
}

static double server_cpu_s(void) { return pids_cpu_s(opt.server_pids, opt.n_server_pids); }

static double aux_cpu_s(void) { return pids_cpu_s(opt.aux_pids, opt.n_aux_pids); }

/* "1,2,3" into out[] (at most max); returns how many. */
static int parse_list(const char *text, long *out, int max, const char *what) {
    int n = 0;
    for (const char *p = text; *p;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || n == max) die("bad %s list: %s", what, text);
        out[n++] = v;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') die("bad %s list: %s", what, text);
    }
    return n;
}

static int hbucket(uint64_t us) {
    if (us < HEXACT) return (int)us;
    int e = 63 - __builtin_clzll(us);
    if (e > 50) return HBUCKETS - 1;
    int shift = e - 10;
    return HEXACT + (e - 11) * 1024 + (int)((us >> shift) - 1024);
}

static double hvalue(int b) {
    if (b < HEXACT) return b;
    int k = b - HEXACT, e = k / 1024 + 11, shift = e - 10;
    return (double)((uint64_t)(k % 1024 + 1024) << shift) + (double)(1ULL << shift) / 2;
}

static void hadd(hist_t *h, int64_t ns) {
    uint64_t us = ns > 0 ? (uint64_t)ns / 1000 : 0;
    if (!h->b) h->b = calloc(HBUCKETS, sizeof *h->b);
    h->b[hbucket(us)]++;
    h->n++;
    if (us > h->max) h->max = us;
}

static double hpct(const hist_t *h, double q) {
    if (!h->n) return -1;
    uint64_t want = (uint64_t)(q * (double)h->n + 0.999999), seen = 0;
    if (want < 1) want = 1;
    for (int i = 0; i < HBUCKETS; i++) {
        seen += h->b[i];
        if (seen >= want) return hvalue(i) > (double)h->max ? (double)h->max : hvalue(i);
    }
    return (double)h->max;
}

/* -- output -------------------------------------------------------------------- */

static void conn_close(int i, int by_server);

static void mark_dirty(int i) {
    if (!conns[i].dirty) {
        conns[i].dirty = 1;
        dirty_list[n_dirty++] = i;
    }
}

static void queue_out(int i, const char *data, size_t len) {
    conn_t *c = &conns[i];
    if (c->state == ST_CLOSED) return;
    if (c->wlen + len > c->wcap) {
        c->wcap = (c->wlen + len) * 2 + 256;
        c->wbuf = xrealloc(c->wbuf, c->wcap);
    }
    memcpy(c->wbuf + c->wlen, data, len);
    c->wlen += len;
    mark_dirty(i);
}

static void want_out(int i, int on) {
    conn_t *c = &conns[i];
    if (c->want_out == on) return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.u32 = (uint32_t)i + 1};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = on;
}

/* Write what is queued; keep the rest and ask for EPOLLOUT. */
static void flush_out(int i) {
    conn_t *c = &conns[i];
    size_t off = 0;
    while (off < c->wlen && c->state != ST_CLOSED) {
        ssize_t n;
#ifdef WITH_TLS
        if (c->ssl) {
            n = SSL_write(c->ssl, c->wbuf + off, (int)(c->wlen - off));
            if (n <= 0) {
                int err = SSL_get_error(c->ssl, (int)n);
                if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) break;
                conn_close(i, 1);
                return;
            }
        } else
#endif
        {
            n = send(c->fd, c->wbuf + off, c->wlen - off, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR) break;
                conn_close(i, 1);
                return;
            }
        }
        off += (size_t)n;
    }
    if (off) {
        memmove(c->wbuf, c->wbuf + off, c->wlen - off);
        c->wlen -= off;
    }
    want_out(i, c->wlen > 0);
}

static void flush_dirty(void) {
    for (int k = 0; k < n_dirty; k++) {
        int i = dirty_list[k];
        conns[i].dirty = 0;
        if (conns[i].state != ST_CLOSED && conns[i].state != ST_CONNECTING) flush_out(i);
    }
    n_dirty = 0;
}

/* -- what clients say ----------------------------------------------------------- */

static void send_chatty(int i, const char *json) {
    size_t len = strlen(json);
    unsigned char hdr[4] = {(unsigned char)(len >> 24), (unsigned char)(len >> 16),
                            (unsigned char)(len >> 8), (unsigned char)len};
    queue_out(i, (const char *)hdr, 4);
    queue_out(i, json, len);
}

static void send_line(int i, const char *line) { queue_out(i, line, strlen(line)); }

static int is_sender(int i) { return i < opt.senders; }

/* The room a client is in after setup: the shared one, or one of its own. */
static void setup_room(int i, char *out, size_t n) {
    if (opt.own_rooms || opt.storm)
        snprintf(out, n, "r%d", conns[i].gidx);
    else
        snprintf(out, n, "%s", opt.room);
}

static void say_hello(int i) {
    char buf[512], room[64];
    setup_room(i, room, sizeof room);
    if (opt.proto == IRC) {
        snprintf(buf, sizeof buf, "NICK %s%d\r\nUSER %s%d 0 * :bench\r\n", opt.prefix, conns[i].gidx,
                 opt.prefix, conns[i].gidx);
        send_line(i, buf);
    } else if (strcmp(room, "lobby") == 0) {
        snprintf(buf, sizeof buf, "{\"type\":\"hello\",\"name\":\"%s%d\",\"protocol\":1}", opt.prefix,
                 conns[i].gidx);
        send_chatty(i, buf);
    } else {
        /* PROTOCOL 7: a hello whose resume names rooms joins exactly those rooms,
         * so a client lands in its own room without passing through the lobby. */
        snprintf(buf, sizeof buf,
                 "{\"type\":\"hello\",\"name\":\"%s%d\",\"protocol\":1,\"resume\":{\"rooms\":{\"%s\":0}}}",
                 opt.prefix, conns[i].gidx, room);
        send_chatty(i, buf);
    }
}

static void irc_registered(int i) {
    char buf[256], room[64];
    setup_room(i, room, sizeof room);
    if (is_sender(i)) {
        /* Operators may set user mode +F: no command throttling (ngircd.conf(5), Modes.txt). */
        snprintf(buf, sizeof buf, "OPER bench bench\r\nMODE %s%d +F\r\n", opt.prefix, conns[i].gidx);
        send_line(i, buf);
    }
    snprintf(buf, sizeof buf, "JOIN #%s\r\n", room);
    send_line(i, buf);
}

static void say(int i, int64_t now) {
    conn_t *c = &conns[i];
    char text[64], buf[9000];
    uint64_t msgno = ++c->sent;
    int head = snprintf(text, sizeof text, "~%d %llu %lld ", c->gidx, (unsigned long long)msgno,
                        (long long)now);
    int padlen = opt.size > head ? opt.size - head : 0;
    if (opt.proto == IRC)
        snprintf(buf, sizeof buf, "PRIVMSG #%s :%s%.*s\r\n", opt.room, text, padlen, pad);
    else
        snprintf(buf, sizeof buf, "{\"type\":\"say\",\"room\":\"%s\",\"text\":\"%s%.*s\",\"id\":\"m%llu\"}",
                 opt.room, text, padlen, pad, (unsigned long long)msgno);
    if (opt.proto == IRC)
        send_line(i, buf);
    else
        send_chatty(i, buf);
    c->in_flight++;
    sent_total++;
    if (slots) {
        slot_t *s = &slots[(size_t)i * RING + msgno % RING];
        s->msgno = msgno;
        s->sent_ns = now;
        s->got = 0;
    }
}

/* -- what clients hear ---------------------------------------------------------- */

static uint64_t parse_u64(const char **p, const char *end) {
    uint64_t v = 0;
    while (*p < end && **p >= '0' && **p <= '9') v = v * 10 + (uint64_t)(*(*p)++ - '0');
    if (*p < end && **p == ' ') (*p)++;
    return v;
}

/* A copy of a timed message: count it, time it, release a window slot. */
static void on_copy(int i, const char *p, const char *end, int64_t now) {
    int sender = (int)parse_u64(&p, end) - opt.first;
    uint64_t msgno = parse_u64(&p, end);
    int64_t sent_ns = (int64_t)parse_u64(&p, end);
    int counted = now >= t_w0 && now < t_w1 && t_w0;
    copies_total++;
    if (counted) {
        copies_win++;
        hadd(&h_copy, now - sent_ns);
    }
    if (sender < 0 || sender >= opt.senders) return; /* another process's sender */
    if (slots) {
        slot_t *s = &slots[(size_t)sender * RING + msgno % RING];
        if (s->msgno == msgno && ++s->got == copies_per_msg && s->sent_ns >= t_w0 && s->sent_ns < t_w1)
            hadd(&h_all, now - s->sent_ns);
    }
    int acker = opt.proto == IRC ? witness : sender;
    if (i != acker) return;
    conn_t *s = &conns[sender];
    s->in_flight--;
    if (counted) acks_win++;
    if (sending && opt.rate <= 0 && s->state == ST_READY) say(sender, now);
}

static void became_ready(int i) {
    if (conns[i].state != ST_REGISTERING) return;
    conns[i].state = ST_READY;
    in_progress--;
    n_ready++;
}

static void storm_arrived(int i, int64_t now) {
    if (conns[i].storm_ready) return;
    conns[i].storm_ready = 1;
    if (++n_storm_ready == opt.clients) t_storm_ready = now;
}

static const char *find(const char *hay, size_t n, const char *needle) {
    return memmem(hay, n, needle, strlen(needle));
}

static void chatty_frame(int i, const char *p, size_t len, int64_t now) {
    const char *end = p + len, *t = find(p, len < 48 ? len : 48, "\"type\":\"");
    if (!t) return;
    t += 8;
    size_t rest = (size_t)(end - t);
    if (rest >= 8 && memcmp(t, "message\"", 8) == 0) {
        const char *m = find(t, rest, "\"text\":\"~");
        if (m) on_copy(i, m + 9, end, now);
    } else if (rest >= 8 && memcmp(t, "history\"", 8) == 0) {
        if (find(t, rest, "\"more\":true")) return;
        char want[80];
        snprintf(want, sizeof want, "\"room\":\"%s\"", opt.room);
        if (opt.storm && phase >= PH_RUN && find(t, rest, want))
            storm_arrived(i, now);
        else
            became_ready(i);
    } else if (rest >= 7 && memcmp(t, "joined\"", 7) == 0) {
        if (phase >= PH_RUN) joined_total++;
    } else if (rest >= 5 && memcmp(t, "ping\"", 5) == 0) {
        const char *tok = find(t, rest, "\"token\":");
        char buf[256];
        int n = 0;
        if (tok) {
            const char *v = tok + 8, *stop = v;
            while (stop < end && *stop != ',' && *stop != '}') stop++;
            n = (int)(stop - v);
            if (n > 200) n = 0;
            snprintf(buf, sizeof buf, "{\"type\":\"pong\",\"token\":%.*s}", n, v);
        }
        send_chatty(i, n ? buf : "{\"type\":\"pong\"}");
    } else if (rest >= 6 && memcmp(t, "error\"", 6) == 0) {
        note_error(i, p, len);
    }
}

static void irc_line(int i, const char *p, size_t len, int64_t now) {
    const char *end = p + len, *cmd = p;
    if (len >= 5 && memcmp(p, "PING ", 5) == 0) {
        char buf[600];
        snprintf(buf, sizeof buf, "PONG %.*s\r\n", (int)(len - 5 > 500 ? 500 : len - 5), p + 5);
        send_line(i, buf);
        return;
    }
    if (len >= 5 && memcmp(p, "ERROR", 5) == 0) {
        note_error(i, p, len);
        return;
    }
    if (*p == ':') { /* skip the prefix */
        cmd = memchr(p, ' ', len);
        if (!cmd) return;
        cmd++;
    }
    size_t rest = (size_t)(end - cmd);
    if (rest >= 8 && memcmp(cmd, "PRIVMSG ", 8) == 0) {
        const char *m = find(cmd, rest, " :~");
        if (m) on_copy(i, m + 3, end, now);
    } else if (rest >= 5 && memcmp(cmd, "JOIN ", 5) == 0) {
        char want[80];
        snprintf(want, sizeof want, "#%s", opt.room);
        if (phase >= PH_RUN && find(cmd, rest, want)) joined_total++;
    } else if (rest >= 4 && cmd[3] == ' ' && cmd[0] >= '0' && cmd[0] <= '9') {
        int code = (cmd[0] - '0') * 100 + (cmd[1] - '0') * 10 + (cmd[2] - '0');
        if (code == 1 && conns[i].state == ST_REGISTERING) {
            irc_registered(i);
        } else if (code == 366) {
            char want[80];
            snprintf(want, sizeof want, " #%s ", opt.room);
            if (opt.storm && phase >= PH_RUN && find(cmd, rest, want))
                storm_arrived(i, now);
            else
                became_ready(i);
        } else if (code >= 400 && code != 422) {
            note_error(i, p, len);
        }
    }
}

/* Split buffered input into frames or lines; return the bytes consumed. */
static size_t process_input(int i, const char *buf, size_t n, int64_t now) {
    size_t off = 0;
    if (opt.proto == CHATTY) {
        while (n - off >= 4) {
            const unsigned char *h = (const unsigned char *)buf + off;
            size_t len = ((size_t)h[0] << 24) | ((size_t)h[1] << 16) | ((size_t)h[2] << 8) | h[3];
            if (n - off - 4 < len) break;
            chatty_frame(i, buf + off + 4, len, now);
            off += 4 + len;
        }
    } else {
        for (;;) {
            const char *nl = memchr(buf + off, '\n', n - off);
            if (!nl) break;
            size_t len = (size_t)(nl - (buf + off));
            if (len && buf[off + len - 1] == '\r') len--;
            irc_line(i, buf + off, len, now);
            off = (size_t)(nl - buf) + 1;
        }
    }
    return off;
}

static void on_data(int i, const char *data, size_t n, int64_t now) {
    conn_t *c = &conns[i];
    t_last_rx = now;
    if (c->rlen == 0) {
        size_t used = process_input(i, data, n, now);
        data += used;
        n -= used;
        if (!n || c->state == ST_CLOSED) return;
    }
    if (c->rlen + n > c->rcap) {
        c->rcap = (c->rlen + n) * 2;
        c->rbuf = xrealloc(c->rbuf, c->rcap);
    }
    memcpy(c->rbuf + c->rlen, data, n);
    c->rlen += n;
    size_t used = process_input(i, c->rbuf, c->rlen, now);
    memmove(c->rbuf, c->rbuf + used, c->rlen - used);
    c->rlen -= used;
    if (!c->rlen) { /* idle connections keep no buffers */
        free(c->rbuf);
        c->rbuf = NULL;
        c->rcap = 0;
    }
}

static void on_readable(int i, int64_t now) {
    conn_t *c = &conns[i];
    int one = 1;
    for (int rounds = 0; rounds < 16 && c->state != ST_CLOSED; rounds++) {
        ssize_t n;
#ifdef WITH_TLS
        if (c->ssl) {
            n = SSL_read(c->ssl, readbuf, READ_CHUNK);
            if (n <= 0) {
                int err = SSL_get_error(c->ssl, (int)n);
                if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
                    if (c->wlen) mark_dirty(i); /* a write may have waited for this read */
                    return;
                }
                conn_close(i, 1);
                return;
            }
        } else
#endif
        {
            n = recv(c->fd, readbuf, READ_CHUNK, 0);
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR) return;
                conn_close(i, 1);
                return;
            }
            if (n == 0) {
                conn_close(i, 1);
                return;
            }
        }
        /* Acknowledge at once: a server that leaves Nagle's algorithm on (ngIRCd)
         * would otherwise wait up to 40 ms for our delayed ACK before its next
         * small write, and the figure would measure TCP timers, not the server.
         * (Servers with TCP_NODELAY, as asyncio and ChattyCat set, do not wait.) */
        if (opt.proto == IRC) setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
        on_data(i, readbuf, (size_t)n, now);
#ifdef WITH_TLS
        if (c->ssl) continue; /* OpenSSL may hold decrypted bytes epoll cannot see */
#endif
        if (n < READ_CHUNK) return;
    }
}

/* -- connections ------------------------------------------------------------------ */

static void conn_open(int i);

static void conn_close(int i, int by_server) {
    conn_t *c = &conns[i];
    if (c->state == ST_CLOSED || c->state == ST_NEW) return;
    if (c->state == ST_CONNECTING || c->state == ST_REGISTERING) {
        in_progress--;
        n_failed++;
    } else if (by_server) {
        n_closed++;
    }
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
#ifdef WITH_TLS
    if (c->ssl) SSL_free(c->ssl);
    c->ssl = NULL;
#endif
    free(c->rbuf);
    free(c->wbuf);
    c->rbuf = c->wbuf = NULL;
    c->rlen = c->wlen = c->rcap = c->wcap = 0;
    c->state = ST_CLOSED;
}

static void connect_failed(int i) {
    conn_t *c = &conns[i];
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (c->attempts < MAX_CONNECT_ATTEMPTS) {
        conn_open(i);
        return;
    }
    c->state = ST_CLOSED;
    in_progress--;
    n_failed++;
}

static void connected(int i) {
    conn_t *c = &conns[i];
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
        if (errors_shown++ < ERRORS_SHOWN)
            fprintf(stderr, "loadgen: connect (client %d): %s\n", c->gidx, strerror(err ? err : errno));
        connect_failed(i);
        return;
    }
    c->state = ST_REGISTERING;
#ifdef WITH_TLS
    if (opt.tls) {
        c->ssl = SSL_new(tls_ctx);
        SSL_set_fd(c->ssl, c->fd);
        SSL_set_connect_state(c->ssl);
    }
#endif
    say_hello(i);
}

static void conn_open(int i) {
    conn_t *c = &conns[i];
    int one = 1;
    c->attempts++;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) die("socket: %s (descriptor limit %d)", strerror(errno), rlimit_nofile);
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (opt.total > CONNS_PER_SOURCE) {
        /* Past the ephemeral port range of one address pair, use 127.0.0.2, .3, ...;
         * the port is chosen at connect() so that each address keeps its full range. */
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)(c->gidx / CONNS_PER_SOURCE));
        setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(c->fd, (struct sockaddr *)&src, sizeof src) < 0) die("bind: %s", strerror(errno));
    }
    int port = opt.ports[c->gidx % opt.n_ports]; /* clients spread evenly over the nodes */
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, opt.host, &dst.sin_addr) != 1) die("bad --host %s", opt.host);
    c->state = ST_CONNECTING;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)i + 1};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl: %s", strerror(errno));
    c->want_out = 1;
    if (connect(c->fd, (struct sockaddr *)&dst, sizeof dst) == 0)
        connected(i);
    else if (errno != EINPROGRESS)
        connect_failed(i);
}

static void on_event(int i, uint32_t events, int64_t now) {
    conn_t *c = &conns[i];
    if (c->state == ST_CONNECTING) {
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) connected(i);
        return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(i, now);
    if ((events & EPOLLOUT) && c->state != ST_CLOSED) flush_out(i);
}

/* -- phases ------------------------------------------------------------------------- */

static void print_ready(int64_t now) {
    printf("ready {\"clients\":%d,\"ready\":%d,\"failed\":%d,\"setup_s\":%.4f,\"nofile\":%d,"
           "\"tls\":%d}\n",
           opt.clients, n_ready, n_failed, (double)(t_ready - t_start) / 1e9, rlimit_nofile, opt.tls);
    fflush(stdout);
    (void)now;
}

static void num(const char *key, double v, int last) {
    if (v < 0 || v != v)
        printf("\"%s\":null%s", key, last ? "" : ",");
    else
        printf("\"%s\":%.12g%s", key, v, last ? "" : ",");
}

static void print_result(void) {
    double win = (double)(t_w1 - t_w0) / 1e9;
    double my_cpu = my_cpu_w1 - my_cpu_w0;
    double srv = srv_cpu_w0 >= 0 && srv_cpu_w1 >= 0 ? srv_cpu_w1 - srv_cpu_w0 : -1;
    double aux = aux_cpu_w0 >= 0 && aux_cpu_w1 >= 0 ? aux_cpu_w1 - aux_cpu_w0 : -1;
    uint64_t expected = sent_total * (uint64_t)(copies_per_msg > 0 ? copies_per_msg : 0);
    int held = 0;
    for (int i = 0; i < opt.clients; i++) held += conns[i].state == ST_READY;
    printf("result {");
    num("clients", opt.clients, 0);
    num("held", held, 0);
    num("closed", n_closed, 0);
    num("window_s", win, 0);
    num("copies", (double)copies_win, 0);
    num("acks", (double)acks_win, 0);
    num("deliveries_per_s", win > 0 ? (double)copies_win / win : -1, 0);
    num("messages_per_s", win > 0 ? (double)acks_win / win : -1, 0);
    num("lat_p50_ms", hpct(&h_copy, 0.5) / 1e3, 0);
    num("lat_p99_ms", hpct(&h_copy, 0.99) / 1e3, 0);
    num("lat_max_ms", h_copy.n ? (double)h_copy.max / 1e3 : -1, 0);
    num("all_p50_ms", hpct(&h_all, 0.5) / 1e3, 0);
    num("all_p99_ms", hpct(&h_all, 0.99) / 1e3, 0);
    num("all_max_ms", h_all.n ? (double)h_all.max / 1e3 : -1, 0);
    num("all_n", (double)h_all.n, 0);
    num("server_cpu_s", srv, 0);
    num("aux_cpu_s", aux, 0);
    num("loadgen_cpu_s", my_cpu, 0);
    num("loadgen_cpu_pct", win > 0 ? 100 * my_cpu / win : -1, 0);
    num("sent", (double)sent_total, 0);
    num("copies_total", (double)copies_total, 0);
    num("copies_per_msg", copies_per_msg, 0);
    num("undelivered", copies_per_msg > 0 && expected > copies_total ? (double)(expected - copies_total) : 0, 0);
    num("storm_ready_s", t_storm_ready ? (double)(t_storm_ready - t_go) / 1e9 : -1, 0);
    num("storm_notices_s", t_storm_notices ? (double)(t_storm_notices - t_go) / 1e9 : -1, 0);
    num("joined", (double)joined_total, 0);
    num("errors", (double)errors_total, 1);
    printf("}\n");
    fflush(stdout);
}

static void window_open(void) {
    window_opened = 1;
    srv_cpu_w0 = server_cpu_s();
    aux_cpu_w0 = aux_cpu_s();
    my_cpu_w0 = self_cpu_s();
}

static void window_close(int64_t now) {
    srv_cpu_w1 = server_cpu_s();
    aux_cpu_w1 = aux_cpu_s();
    my_cpu_w1 = self_cpu_s();
    t_end = now;
}

static void go(int64_t now) {
    t_go = now;
    phase = PH_RUN;
    if (opt.storm) {
        t_w0 = now;
        window_open();
        char buf[128];
        for (int i = 0; i < opt.clients; i++) {
            if (conns[i].state != ST_READY) continue;
            if (opt.proto == IRC) {
                snprintf(buf, sizeof buf, "JOIN #%s\r\n", opt.room);
                send_line(i, buf);
            } else {
                snprintf(buf, sizeof buf, "{\"type\":\"join\",\"room\":\"%s\"}", opt.room);
                send_chatty(i, buf);
            }
        }
        return;
    }
    t_w0 = now + (int64_t)(opt.warmup * 1e9);
    t_w1 = t_w0 + (int64_t)(opt.duration * 1e9);
    if (opt.senders == 0) {
        t_w0 = now;
        t_w1 = now + (int64_t)(opt.duration * 1e9);
        window_open();
        return;
    }
    sending = 1;
    if (opt.rate <= 0)
        for (int s = 0; s < opt.senders; s++)
            for (int k = 0; k < opt.window && conns[s].state == ST_READY; k++) say(s, now);
}

static void paced(int64_t now) {
    uint64_t due = (uint64_t)((double)(now - t_go) * opt.rate / 1e9);
    while (paced_sent < due) {
        int s = (int)(paced_sent++ % (uint64_t)opt.senders);
        if (conns[s].state == ST_READY && conns[s].wlen < OUTBUF_SKIP_BYTES) say(s, now);
    }
}

/* Advance the phase; returns 1 when the measured phase is over. */
static int tick(int64_t now) {
    switch (phase) {
    case PH_SETUP:
        while (next_to_open < opt.clients && in_progress < opt.concurrency) {
            in_progress++;
            conn_open(next_to_open++);
        }
        if (n_ready + n_failed >= opt.clients || now - t_start > (int64_t)(opt.setup_timeout * 1e9)) {
            t_ready = now;
            phase = PH_SETTLE;
        }
        break;
    case PH_SETTLE:
        if (now - t_last_rx > (int64_t)(opt.settle * 1e9) || now - t_ready > SETTLE_MAX_NS) {
            print_ready(now);
            phase = PH_WAIT_GO;
        }
        break;
    case PH_RUN:
        if (opt.storm) {
            uint64_t n = (uint64_t)n_ready, notices = n * (n + 1) / 2;
            if (!t_storm_notices && joined_total >= notices) t_storm_notices = now;
            int done = t_storm_ready && t_storm_notices;
            if (done || now - t_go > (int64_t)(opt.duration * 1e9)) {
                t_w1 = now;
                window_close(now);
                return 1;
            }
            break;
        }
        if (!window_opened && now >= t_w0) window_open();
        if (sending && opt.rate > 0) paced(now);
        if (now >= t_w1) {
            window_close(now);
            if (opt.senders == 0) return 1;
            sending = 0;
            phase = PH_DRAIN;
        }
        break;
    case PH_DRAIN: {
        uint64_t expected = sent_total * (uint64_t)copies_per_msg;
        if (copies_per_msg <= 0 || copies_total >= expected || now - t_end > DRAIN_TIMEOUT_NS) return 1;
        break;
    }
    default:
        break;
    }
    return 0;
}

static int poll_timeout_ms(int64_t now) {
    if (phase == PH_SETUP) return 5;
    if (phase == PH_SETTLE || phase == PH_DRAIN) return 20;
    if (phase == PH_RUN) {
        if (sending && opt.rate > 0) return 1;
        int64_t next = now < t_w0 ? t_w0 : t_w1;
        int64_t ms = (next - now) / 1000000 + 1;
        return (int)(ms < 1 ? 1 : ms > 50 ? 50 : ms);
    }
    return -1;
}

/* "go" starts the measured phase; "quit" or end of input ends the process. */
static int on_stdin(int64_t now) {
    static char line[256];
    static size_t have;
    ssize_t n = read(0, line + have, sizeof line - 1 - have);
    if (n <= 0) return -1;
    have += (size_t)n;
    char *nl;
    while ((nl = memchr(line, '\n', have))) {
        *nl = 0;
        if (strcmp(line, "go") == 0 && phase == PH_WAIT_GO) go(now);
        if (strcmp(line, "quit") == 0) return -1;
        have -= (size_t)(nl + 1 - line);
        memmove(line, nl + 1, have);
    }
    if (have == sizeof line - 1) have = 0;
    return 0;
}

/* -- command line ------------------------------------------------------------------- */

static void usage(void) {
    fprintf(stderr,
            "usage: loadgen [--proto chatty|irc] [--tls] [--host H] [--port P[,P2...]]\n"
            "  [--clients N] [--first I] [--total T] [--room R] [--own-rooms] [--storm]\n"
            "  [--senders S] [--window W] [--rate MSGS_PER_S] [--size BYTES]\n"
            "  [--warmup S] [--duration S] [--concurrency K] [--track]\n"
            "  [--server-pid PID[,PID...]] [--aux-pid PID[,PID...]] [--prefix NAME]\n"
            "  [--setup-timeout S] [--settle S]\n");
    exit(2);
}

static void parse_args(int argc, char **argv) {
    static struct option longopts[] = {
        {"proto", 1, 0, 'p'},    {"tls", 0, 0, 'T'},        {"host", 1, 0, 'H'},
        {"port", 1, 0, 'P'},     {"clients", 1, 0, 'c'},    {"first", 1, 0, 'f'},
        {"total", 1, 0, 't'},    {"room", 1, 0, 'r'},       {"own-rooms", 0, 0, 'o'},
        {"storm", 0, 0, 'S'},    {"senders", 1, 0, 's'},    {"window", 1, 0, 'w'},
        {"rate", 1, 0, 'R'},     {"size", 1, 0, 'z'},       {"warmup", 1, 0, 'W'},
        {"duration", 1, 0, 'd'}, {"concurrency", 1, 0, 'C'}, {"track", 0, 0, 'k'},
        {"server-pid", 1, 0, 'x'}, {"prefix", 1, 0, 'n'},   {"setup-timeout", 1, 0, 'u'},
        {"settle", 1, 0, 'q'},   {"aux-pid", 1, 0, 'a'},    {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'p': opt.proto = strcmp(optarg, "irc") == 0 ? IRC : CHATTY; break;
        case 'T': opt.tls = 1; break;
        case 'H': opt.host = optarg; break;
        case 'P': {
            long ports[MAX_PORTS];
            opt.n_ports = parse_list(optarg, ports, MAX_PORTS, "--port");
            for (int k = 0; k < opt.n_ports; k++) opt.ports[k] = (int)ports[k];
            break;
        }
        case 'c': opt.clients = atoi(optarg); break;
        case 'f': opt.first = atoi(optarg); break;
        case 't': opt.total = atoi(optarg); break;
        case 'r': opt.room = optarg; break;
        case 'o': opt.own_rooms = 1; break;
        case 'S': opt.storm = 1; break;
        case 's': opt.senders = atoi(optarg); break;
        case 'w': opt.window = atoi(optarg); break;
        case 'R': opt.rate = atof(optarg); break;
        case 'z': opt.size = atoi(optarg); break;
        case 'W': opt.warmup = atof(optarg); break;
        case 'd': opt.duration = atof(optarg); break;
        case 'C': opt.concurrency = atoi(optarg); break;
        case 'k': opt.track = 1; break;
        case 'x': opt.n_server_pids = parse_list(optarg, opt.server_pids, MAX_PIDS, "--server-pid"); break;
        case 'a': opt.n_aux_pids = parse_list(optarg, opt.aux_pids, MAX_PIDS, "--aux-pid"); break;
        case 'n': opt.prefix = optarg; break;
        case 'u': opt.setup_timeout = atof(optarg); break;
        case 'q': opt.settle = atof(optarg); break;
        default: usage();
        }
    }
    if (opt.clients < 1 || opt.senders < 0 || opt.senders > opt.clients || opt.window < 1 ||
        opt.size < 1 || opt.size > 4000 || opt.duration <= 0)
        usage();
    if (opt.proto == IRC && opt.senders > 0 && opt.senders >= opt.clients)
        die("IRC needs a member that does not send (the witness): --senders < --clients");
    if (opt.storm) opt.senders = 0;
    if (opt.n_ports == 0) opt.ports[opt.n_ports++] = opt.port;
    if (opt.total < opt.first + opt.clients) opt.total = opt.first + opt.clients;
#ifndef WITH_TLS
    if (opt.tls) die("built without TLS (OpenSSL headers were missing at build time)");
#endif
}

/* Take every descriptor the hard limit allows: this process may hold thousands of sockets. */
static void raise_nofile(void) {
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    rlimit_nofile = (int)rl.rlim_cur;
    if (opt.clients + 16 > rlimit_nofile)
        die("%d clients need more descriptors than the limit of %d: run more processes",
            opt.clients, rlimit_nofile);
}

int main(int argc, char **argv) {
    parse_args(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    memset(pad, 'x', sizeof pad);
    conns = calloc((size_t)opt.clients, sizeof *conns);
    dirty_list = calloc((size_t)opt.clients, sizeof *dirty_list);
    readbuf = malloc(READ_CHUNK);
    if (!conns || !dirty_list || !readbuf) die("out of memory");
    for (int i = 0; i < opt.clients; i++) conns[i].gidx = opt.first + i;
    if (opt.proto == IRC && opt.senders > 0) witness = opt.clients - 1;
    copies_per_msg = opt.proto == IRC ? opt.clients - 1 : opt.clients;
    if (opt.track && opt.senders > 0) slots = calloc((size_t)opt.senders * RING, sizeof *slots);
#ifdef WITH_TLS
    if (opt.tls) {
        tls_ctx = SSL_CTX_new(TLS_client_method());
        if (!tls_ctx) die("SSL_CTX_new failed");
        SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL); /* a throwaway self-signed cert */
        SSL_CTX_set_mode(tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    }
#endif
    ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event sev = {.events = EPOLLIN, .data.u32 = 0};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, 0, &sev) < 0) die("stdin must be a pipe or terminal");
    struct epoll_event evs[MAX_EVENTS];
    t_start = t_last_rx = now_ns();
    int quit = 0;
    while (!quit) {
        int64_t now = now_ns();
        int n = epoll_wait(ep, evs, MAX_EVENTS, poll_timeout_ms(now));
        now = now_ns();
        for (int k = 0; k < n; k++) {
            if (evs[k].data.u32 == 0) {
                if (on_stdin(now) < 0) quit = 1;
                continue;
            }
            on_event((int)evs[k].data.u32 - 1, evs[k].events, now);
        }
        flush_dirty();
        if (phase != PH_WAIT_QUIT && tick(now_ns())) {
            print_result();
            phase = PH_WAIT_QUIT;
        }
        flush_dirty();
    }
    return 0;
}
