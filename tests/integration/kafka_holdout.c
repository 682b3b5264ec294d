/* SPDX-License-Identifier: MIT */
/* kafka_holdout - a librdkafka producer for fault tests: acks=all with idempotence, a fixed
 * rate, every message's value its sequence number; each acknowledged number is appended to a
 * file as the delivery report arrives, so the test can check afterwards that every
 * acknowledged message was consumed exactly once.
 *
 *   kafka_holdout BOOTSTRAP TOPIC RATE_PER_S SECONDS ACKED_FILE
 *
 * Prints one logfmt line at the end: sent, acked, failed, the longest gap between two acks
 * of the whole producer and of any one partition (a partition without a leader waits; the
 * others go on), in ms; exits 0 when every message was acknowledged, 1 otherwise (2 on usage
 * errors). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "core/str.h"
#include "core/time.h"

#define MAX_PARTITIONS 256

struct holdout {
    FILE *acked;
    uint64_t n_acked, n_failed;
    uint64_t last_ack_usec, max_gap_usec;
    uint64_t last_part_usec[MAX_PARTITIONS], max_part_gap_usec;
    char first_error[256];
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct holdout *h = opaque;
    uint64_t now = now_usec();

    (void)rk;
    if (m->err) {
        if (!h->n_failed++)
            (void)snprintf(h->first_error, sizeof h->first_error, "%s", rd_kafka_err2str(m->err));
        return;
    }
    if (h->last_ack_usec && now - h->last_ack_usec > h->max_gap_usec)
        h->max_gap_usec = now - h->last_ack_usec;
    h->last_ack_usec = now;
    if (m->partition >= 0 && m->partition < MAX_PARTITIONS) {
        uint64_t *last = &h->last_part_usec[m->partition];

        if (*last && now - *last > h->max_part_gap_usec)
            h->max_part_gap_usec = now - *last;
        *last = now;
    }
    h->n_acked++;
    fprintf(h->acked, "%.*s\n", (int)m->len, (const char *)m->payload);
}

static bool set(rd_kafka_conf_t *conf, const char *key, const char *value)
{
    char err[256];

    if (rd_kafka_conf_set(conf, key, value, err, sizeof err) == RD_KAFKA_CONF_OK)
        return true;
    fprintf(stderr, "kafka_holdout: %s=%s: %s\n", key, value, err);
    return false;
}

int main(int argc, char **argv)
{
    struct holdout h = { 0 };
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    uint64_t rate, seconds, sent = 0, start, interval;
    char err[256];

    if (argc != 6 || parse_uint_range(argv[3], 1, 100000, &rate) < 0 ||
        parse_uint_range(argv[4], 1, 3600, &seconds) < 0) {
        fprintf(stderr, "usage: kafka_holdout BOOTSTRAP TOPIC RATE_PER_S SECONDS ACKED_FILE\n");
        return 2;
    }
    h.acked = fopen(argv[5], "we");
    if (!h.acked) {
        fprintf(stderr, "kafka_holdout: %s: %s\n", argv[5], strerror(errno));
        return 1;
    }
    setvbuf(h.acked, NULL, _IOLBF, 0);
    conf = rd_kafka_conf_new();
    /* Messages wait out a failover instead of failing: retried until acknowledged. */
    if (!set(conf, "bootstrap.servers", argv[1]) || !set(conf, "acks", "all") ||
        !set(conf, "enable.idempotence", "true") || !set(conf, "linger.ms", "5") ||
        !set(conf, "message.timeout.ms", "120000") ||
        !set(conf, "topic.metadata.refresh.interval.ms", "1000")) {
        rd_kafka_conf_destroy(conf);
        return 2;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, &h);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "kafka_holdout: %s\n", err);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    start = now_usec();
    interval = USEC_PER_SEC / rate;
    while (now_usec() - start < seconds * USEC_PER_SEC) {
        char value[32];
        int n = snprintf(value, sizeof value, "%llu", (unsigned long long)sent);
        /* the array form: RD_KAFKA_V_*() are GNU statement expressions */
        const rd_kafka_vu_t vu[] = {
            { .vtype = RD_KAFKA_VTYPE_TOPIC, .u.cstr = argv[2] },
            { .vtype = RD_KAFKA_VTYPE_VALUE, .u.mem = { value, (size_t)n } },
            { .vtype = RD_KAFKA_VTYPE_MSGFLAGS, .u.i = RD_KAFKA_MSG_F_COPY },
        };
        rd_kafka_error_t *error = rd_kafka_produceva(rk, vu, sizeof vu / sizeof vu[0]);
        rd_kafka_resp_err_t e = error ? rd_kafka_error_code(error) : RD_KAFKA_RESP_ERR_NO_ERROR;

        if (error)
            rd_kafka_error_destroy(error);
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(rk, 10);
            continue;
        }
        if (e) {
            fprintf(stderr, "kafka_holdout: produce: %s\n", rd_kafka_err2str(e));
            break;
        }
        sent++;
        /* pace: poll (delivery reports) until the next message is due */
        while (now_usec() < start + sent * interval)
            rd_kafka_poll(rk, 1);
    }
    (void)rd_kafka_flush(rk, 120 * 1000);
    rd_kafka_destroy(rk);
    fclose(h.acked);
    printf("sent=%llu acked=%llu failed=%llu max_ack_gap_ms=%llu max_partition_ack_gap_ms=%llu "
           "first_error=\"%s\"\n",
           (unsigned long long)sent, (unsigned long long)h.n_acked, (unsigned long long)h.n_failed,
           (unsigned long long)(h.max_gap_usec / 1000),
           (unsigned long long)(h.max_part_gap_usec / 1000), h.first_error);
    return h.n_acked == sent && h.n_failed == 0 ? 0 : 1;
}
