/* SPDX-License-Identifier: MIT */
/* bucket.c - murmur3_x86_32 (one-shot and streaming) and the bucketing formula. */
#include <stdatomic.h>
#include <string.h>

#include "rollout_int.h"

#define C1 0xcc9e2d51u
#define C2 0x1b873593u

static inline uint32_t rotl32(uint32_t x, unsigned r)
{
    return (x << r) | (x >> (32 - r));
}

static inline uint32_t mix_k(uint32_t k)
{
    k *= C1;
    k = rotl32(k, 15);
    return k * C2;
}

static inline uint32_t mix_h(uint32_t h, uint32_t k)
{
    h ^= mix_k(k);
    h = rotl32(h, 13);
    return h * 5 + 0xe6546b64u;
}

static inline uint32_t fmix(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

static inline uint32_t load_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void rollout__mm3_init(struct mm3 *m, uint32_t seed)
{
    m->h = seed;
    m->tail = 0;
    m->n_tail = 0;
    m->len = 0;
}

void rollout__mm3_update(struct mm3 *m, const void *data, size_t len)
{
    const unsigned char *p = data;

    m->len += (uint32_t)len; /* murmur3_x86_32 mixes in the length mod 2^32 */
    /* Complete a pending partial block first, then whole blocks, then keep the rest. */
    while (m->n_tail && len) {
        m->tail |= (uint32_t)*p++ << (8 * m->n_tail);
        len--;
        if (++m->n_tail == 4) {
            m->h = mix_h(m->h, m->tail);
            m->tail = 0;
            m->n_tail = 0;
        }
    }
    while (len >= 4) {
        m->h = mix_h(m->h, load_le32(p));
        p += 4;
        len -= 4;
    }
    while (len) {
        m->tail |= (uint32_t)*p++ << (8 * m->n_tail);
        m->n_tail++;
        len--;
    }
}

uint32_t rollout__mm3_final(const struct mm3 *m)
{
    uint32_t h = m->h;

    if (m->n_tail)
        h ^= mix_k(m->tail);
    h ^= m->len;
    return fmix(h);
}

uint32_t rollout_murmur3_32(const void *data, size_t len, uint32_t seed)
{
    struct mm3 m;

    rollout__mm3_init(&m, seed);
    rollout__mm3_update(&m, data, len);
    return rollout__mm3_final(&m);
}

uint32_t rollout_bucket(const char *salt, const char *value)
{
    struct mm3 m;

    rollout__mm3_init(&m, 0);
    rollout__mm3_update(&m, salt, strlen(salt));
    rollout__mm3_update(&m, ":", 1);
    rollout__mm3_update(&m, value, strlen(value));
    return rollout__bucket_of(rollout__mm3_final(&m));
}

unsigned rollout__thread_slot(void)
{
    static _Atomic unsigned next;
    static _Thread_local unsigned slot_plus_one;

    if (!slot_plus_one)
        slot_plus_one = atomic_fetch_add_explicit(&next, 1, memory_order_relaxed) + 1;
    return slot_plus_one - 1;
}
