/* SPDX-License-Identifier: MIT */
/* fake_nvml.c - a fake libnvidia-ml.so.1 for tests (never installed).  It exports the NVML
 * symbols gpu_agent uses; its GPUs are described by the state file named in $FAKE_NVML_STATE,
 * which a test (re)writes at any time (write a temp file and rename it over the old one).
 * The file is re-read whenever its inode, size or mtime changes.  Format, one entry a line:
 *
 *   # comment
 *   init_error 9                       nvmlInit* returns this status (default 0)
 *   reject_v1 1                        unversioned symbols (nvmlInit, ...) fail with 999
 *   driver_version 580.159.04          nvml_version ..., cuda_driver_version 13000
 *   gpu_count 2
 *   gpu0.uuid GPU-...                  per-GPU values, keys below; a key that is absent (or
 *   gpu0.temperature 39                whose value is "unsupported") answers NOT_SUPPORTED
 *   gpu0.lost 1                        every call on gpu0 returns GPU_IS_LOST (15)
 *   gpu0.reset_required 1              ... RESET_REQUIRED (16)
 *   gpu0.hang_ms 3000                  every call on gpu0 sleeps this long first
 *   gpu0.error.nvmlDeviceGetPowerUsage 999   one function on gpu0 fails with this status
 *   xid 1 0 79                         XID event: sequence number, GPU index, XID
 *
 * Per-GPU keys: name uuid pci_bus_id pci_device_id pci_subsystem_id minor util_gpu
 * util_memory memory_total memory_reserved memory_used memory_free temperature
 * memory_temperature power_usage_mw power_limit_mw energy_mj clock_{graphics,sm,mem,video}
 * max_clock_{graphics,sm,mem,video} clocks_event_reasons pstate fan_speed ecc_mode
 * ecc_{corrected,uncorrected}_{volatile,aggregate} retired_sbe retired_dbe retired_pending
 * remapped_correctable remapped_uncorrectable remapped_pending remapped_failure pcie_replay
 * pcie_gen pcie_width nvlink ("1 1 0 1": one state per link) recovery_action
 * supported_events.
 *
 * An event set only sees XIDs whose sequence number is above the largest one present when the
 * set was created ("events that occurred before this call are not recorded"); nvmlEventSetWait
 * returns GPU_IS_LOST while a registered GPU is lost. */
#include "fake_nvml.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

enum {
    R_SUCCESS = 0,
    R_UNINITIALIZED = 1,
    R_INVALID_ARGUMENT = 2,
    R_NOT_SUPPORTED = 3,
    R_NOT_FOUND = 6,
    R_INSUFFICIENT_SIZE = 7,
    R_DRIVER_NOT_LOADED = 9,
    R_TIMEOUT = 10,
    R_GPU_IS_LOST = 15,
    R_RESET_REQUIRED = 16,
    R_ARGUMENT_VERSION_MISMATCH = 25,
    R_UNKNOWN = 999,
};

#define MAX_GPUS    64
#define MAX_ENTRIES 4096
#define MAX_XIDS    4096

struct entry {
    char key[96];
    char val[160];
};

struct xid_event {
    long seq;
    unsigned gpu;
    unsigned long long xid;
};

struct state {
    struct entry *entries;
    size_t n;
    struct xid_event *xids;
    size_t n_xids;
};

struct fake_dev {
    unsigned index;
};

struct fake_set {
    uint64_t gpus; /* registered GPU bits */
    long last_seq;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct state st;
static struct stat st_stat;
static bool st_loaded;
static int init_count;
static struct fake_dev devs[MAX_GPUS];

/* The state lives as long as the library: freed when it is unloaded (dlclose), so leak
 * checkers of the process that loaded it see nothing left behind. */
__attribute__((destructor)) static void fake_fini(void)
{
    free(st.entries);
    free(st.xids);
    st.entries = NULL;
    st.xids = NULL;
}

/* ===== State file ===== */

static void trim(char *s)
{
    size_t n = strlen(s);

    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
}

static void load_locked(void)
{
    const char *path = getenv("FAKE_NVML_STATE");
    struct stat now;
    char line[512];
    FILE *f;

    if (!path || stat(path, &now) < 0) {
        st.n = st.n_xids = 0;
        st_loaded = false;
        return;
    }
    if (st_loaded && now.st_ino == st_stat.st_ino && now.st_size == st_stat.st_size &&
        now.st_mtim.tv_sec == st_stat.st_mtim.tv_sec &&
        now.st_mtim.tv_nsec == st_stat.st_mtim.tv_nsec)
        return;
    f = fopen(path, "re");
    if (!f)
        return;
    if (!st.entries) {
        st.entries = calloc(MAX_ENTRIES, sizeof *st.entries);
        st.xids = calloc(MAX_XIDS, sizeof *st.xids);
        if (!st.entries || !st.xids)
            abort();
    }
    st.n = st.n_xids = 0;
    while (fgets(line, sizeof line, f)) {
        char *sp;

        trim(line);
        if (line[0] == '\0' || line[0] == '#')
            continue;
        if (strncmp(line, "xid ", 4) == 0) {
            char *end;
            struct xid_event e;

            e.seq = strtol(line + 4, &end, 10);
            e.gpu = (unsigned)strtoul(end, &end, 10);
            e.xid = strtoull(end, &end, 10);
            if (st.n_xids < MAX_XIDS)
                st.xids[st.n_xids++] = e;
            continue;
        }
        sp = strchr(line, ' ');
        if (!sp || st.n >= MAX_ENTRIES)
            continue;
        *sp = '\0';
        (void)snprintf(st.entries[st.n].key, sizeof st.entries[st.n].key, "%s", line);
        (void)snprintf(st.entries[st.n].val, sizeof st.entries[st.n].val, "%s", sp + 1);
        st.n++;
    }
    (void)fclose(f);
    st_stat = now;
    st_loaded = true;
}

static const char *get_locked(const char *key)
{
    for (size_t i = st.n; i > 0; i--) /* the last entry for a key wins */
        if (strcmp(st.entries[i - 1].key, key) == 0)
            return strcmp(st.entries[i - 1].val, "unsupported") == 0 ? NULL : st.entries[i - 1].val;
    return NULL;
}

static const char *gpu_get_locked(unsigned gpu, const char *key)
{
    char k[192];

    (void)snprintf(k, sizeof k, "gpu%u.%s", gpu, key);
    return get_locked(k);
}

static bool to_u64(const char *s, unsigned long long *ret)
{
    char *end;

    if (!s)
        return false;
    errno = 0;
    *ret = strtoull(s, &end, 0);
    return errno == 0 && end != s;
}

static long max_seq_locked(void)
{
    long m = 0;

    for (size_t i = 0; i < st.n_xids; i++)
        if (st.xids[i].seq > m)
            m = st.xids[i].seq;
    return m;
}

static unsigned gpu_count_locked(void)
{
    unsigned long long n = 0;

    if (!to_u64(get_locked("gpu_count"), &n) || n > MAX_GPUS)
        return 0;
    return (unsigned)n;
}

static void sleep_ms(unsigned long long ms)
{
    struct timespec ts = { .tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Common entry of every device call: reloads, applies hang/lost/injected errors.  On success
 * the lock is held and *ret_gpu is the GPU index; on failure the lock is released. */
static int dev_enter(void *d, const char *fn, unsigned *ret_gpu)
{
    struct fake_dev *dev = d;
    unsigned long long v = 0, hang = 0;
    char key[160];

    if (!dev || dev < devs || dev >= devs + MAX_GPUS)
        return R_INVALID_ARGUMENT;
    pthread_mutex_lock(&lock);
    if (init_count == 0) {
        pthread_mutex_unlock(&lock);
        return R_UNINITIALIZED;
    }
    load_locked();
    if (to_u64(gpu_get_locked(dev->index, "hang_ms"), &hang) && hang > 0) {
        pthread_mutex_unlock(&lock);
        sleep_ms(hang);
        pthread_mutex_lock(&lock);
        load_locked();
    }
    if (to_u64(gpu_get_locked(dev->index, "lost"), &v) && v) {
        pthread_mutex_unlock(&lock);
        return R_GPU_IS_LOST;
    }
    if (to_u64(gpu_get_locked(dev->index, "reset_required"), &v) && v) {
        pthread_mutex_unlock(&lock);
        return R_RESET_REQUIRED;
    }
    (void)snprintf(key, sizeof key, "error.%s", fn);
    if (to_u64(gpu_get_locked(dev->index, key), &v) && v) {
        pthread_mutex_unlock(&lock);
        return (int)v;
    }
    *ret_gpu = dev->index;
    return R_SUCCESS;
}

/* Reads an unsigned value of gpu's key into *out (NOT_SUPPORTED when absent); unlocks. */
static int dev_u64(void *d, const char *fn, const char *key, unsigned long long *out)
{
    unsigned gpu;
    int r = dev_enter(d, fn, &gpu);

    if (r != R_SUCCESS)
        return r;
    r = to_u64(gpu_get_locked(gpu, key), out) ? R_SUCCESS : R_NOT_SUPPORTED;
    pthread_mutex_unlock(&lock);
    return r;
}

static int dev_uint(void *d, const char *fn, const char *key, unsigned int *out)
{
    unsigned long long v = 0;
    int r;

    if (!out)
        return R_INVALID_ARGUMENT;
    r = dev_u64(d, fn, key, &v);
    if (r == R_SUCCESS)
        *out = (unsigned int)v;
    return r;
}

static int dev_string(void *d, const char *fn, const char *key, char *out, unsigned int n)
{
    const char *v;
    unsigned gpu;
    int r;

    if (!out || n == 0)
        return R_INVALID_ARGUMENT;
    r = dev_enter(d, fn, &gpu);
    if (r != R_SUCCESS)
        return r;
    v = gpu_get_locked(gpu, key);
    if (!v)
        r = R_NOT_SUPPORTED;
    else if (strlen(v) >= n)
        r = R_INSUFFICIENT_SIZE;
    else
        (void)snprintf(out, n, "%.*s", n ? (int)n - 1 : 0, v); /* truncated like NVML */
    pthread_mutex_unlock(&lock);
    return r;
}

static bool v1_rejected(void)
{
    unsigned long long v = 0;
    bool rej;

    pthread_mutex_lock(&lock);
    load_locked();
    rej = to_u64(get_locked("reject_v1"), &v) && v;
    pthread_mutex_unlock(&lock);
    return rej;
}

/* ===== Library ===== */

int nvmlInit_v2(void)
{
    unsigned long long e = 0;

    pthread_mutex_lock(&lock);
    load_locked();
    if (!st_loaded) {
        pthread_mutex_unlock(&lock);
        return R_DRIVER_NOT_LOADED;
    }
    if (to_u64(get_locked("init_error"), &e) && e) {
        pthread_mutex_unlock(&lock);
        return (int)e;
    }
    for (unsigned i = 0; i < MAX_GPUS; i++)
        devs[i].index = i;
    init_count++;
    pthread_mutex_unlock(&lock);
    return R_SUCCESS;
}

int nvmlInit(void)
{
    return v1_rejected() ? R_UNKNOWN : nvmlInit_v2();
}

int nvmlShutdown(void)
{
    pthread_mutex_lock(&lock);
    if (init_count == 0) {
        pthread_mutex_unlock(&lock);
        return R_UNINITIALIZED;
    }
    init_count--;
    pthread_mutex_unlock(&lock);
    return R_SUCCESS;
}

const char *nvmlErrorString(int r)
{
    switch (r) {
    case R_SUCCESS:
        return "Success";
    case R_NOT_SUPPORTED:
        return "Not Supported";
    case R_DRIVER_NOT_LOADED:
        return "Driver Not Loaded";
    case R_TIMEOUT:
        return "Timeout";
    case R_GPU_IS_LOST:
        return "GPU is lost";
    case R_RESET_REQUIRED:
        return "GPU requires reset";
    default:
        return "Unknown Error";
    }
}

static int sys_string(const char *key, char *out, unsigned int n)
{
    const char *v;
    int r = R_SUCCESS;

    if (!out || n == 0)
        return R_INVALID_ARGUMENT;
    pthread_mutex_lock(&lock);
    load_locked();
    v = init_count ? get_locked(key) : NULL;
    if (!init_count)
        r = R_UNINITIALIZED;
    else if (!v)
        r = R_NOT_SUPPORTED;
    else
        (void)snprintf(out, n, "%.*s", n ? (int)n - 1 : 0, v); /* truncated like NVML */
    pthread_mutex_unlock(&lock);
    return r;
}

int nvmlSystemGetDriverVersion(char *v, unsigned int n)
{
    return sys_string("driver_version", v, n);
}

int nvmlSystemGetNVMLVersion(char *v, unsigned int n)
{
    return sys_string("nvml_version", v, n);
}

int nvmlSystemGetCudaDriverVersion_v2(int *v)
{
    char buf[32];
    unsigned long long x;
    int r = sys_string("cuda_driver_version", buf, sizeof buf);

    if (r == R_SUCCESS && !to_u64(buf, &x))
        r = R_NOT_SUPPORTED;
    if (r == R_SUCCESS)
        *v = (int)x;
    return r;
}

int nvmlSystemGetCudaDriverVersion(int *v)
{
    return v1_rejected() ? R_UNKNOWN : nvmlSystemGetCudaDriverVersion_v2(v);
}

int nvmlDeviceGetCount_v2(unsigned int *n)
{
    if (!n)
        return R_INVALID_ARGUMENT;
    pthread_mutex_lock(&lock);
    load_locked();
    *n = gpu_count_locked();
    pthread_mutex_unlock(&lock);
    return init_count ? R_SUCCESS : R_UNINITIALIZED;
}

int nvmlDeviceGetCount(unsigned int *n)
{
    return v1_rejected() ? R_UNKNOWN : nvmlDeviceGetCount_v2(n);
}

int nvmlDeviceGetHandleByIndex_v2(unsigned int i, void **d)
{
    unsigned long long v = 0;
    int r = R_SUCCESS;

    if (!d)
        return R_INVALID_ARGUMENT;
    pthread_mutex_lock(&lock);
    load_locked();
    if (!init_count)
        r = R_UNINITIALIZED;
    else if (i >= gpu_count_locked())
        r = R_INVALID_ARGUMENT;
    else if (to_u64(gpu_get_locked(i, "lost"), &v) && v)
        r = R_GPU_IS_LOST;
    else
        *d = &devs[i];
    pthread_mutex_unlock(&lock);
    return r;
}

int nvmlDeviceGetHandleByIndex(unsigned int i, void **d)
{
    return v1_rejected() ? R_UNKNOWN : nvmlDeviceGetHandleByIndex_v2(i, d);
}

int nvmlDeviceGetUUID(void *d, char *v, unsigned int n)
{
    return dev_string(d, "nvmlDeviceGetUUID", "uuid", v, n);
}

int nvmlDeviceGetName(void *d, char *v, unsigned int n)
{
    return dev_string(d, "nvmlDeviceGetName", "name", v, n);
}

int nvmlDeviceGetPciInfo_v3(void *d, struct fake_nvml_pci *p)
{
    unsigned long long id = 0, sub = 0;
    const char *bus;
    unsigned gpu;
    int r;

    if (!p)
        return R_INVALID_ARGUMENT;
    r = dev_enter(d, "nvmlDeviceGetPciInfo_v3", &gpu);
    if (r != R_SUCCESS)
        return r;
    bus = gpu_get_locked(gpu, "pci_bus_id");
    if (!bus) {
        pthread_mutex_unlock(&lock);
        return R_NOT_SUPPORTED;
    }
    memset(p, 0, sizeof *p);
    (void)snprintf(p->bus_id, sizeof p->bus_id, "%.*s", (int)sizeof p->bus_id - 1, bus);
    (void)snprintf(p->bus_id_legacy, sizeof p->bus_id_legacy, "%s",
                   bus + (strlen(bus) > 12 ? 4 : 0));
    (void)to_u64(gpu_get_locked(gpu, "pci_device_id"), &id);
    (void)to_u64(gpu_get_locked(gpu, "pci_subsystem_id"), &sub);
    p->pci_device_id = (unsigned)id;
    p->pci_subsystem_id = (unsigned)sub;
    p->device = gpu;
    pthread_mutex_unlock(&lock);
    return R_SUCCESS;
}

int nvmlDeviceGetMinorNumber(void *d, unsigned int *v)
{
    return dev_uint(d, "nvmlDeviceGetMinorNumber", "minor", v);
}

int nvmlDeviceGetUtilizationRates(void *d, struct fake_nvml_utilization *u)
{
    unsigned long long g = 0, m = 0;
    unsigned gpu;
    int r;

    if (!u)
        return R_INVALID_ARGUMENT;
    r = dev_enter(d, "nvmlDeviceGetUtilizationRates", &gpu);
    if (r != R_SUCCESS)
        return r;
    if (!to_u64(gpu_get_locked(gpu, "util_gpu"), &g) ||
        !to_u64(gpu_get_locked(gpu, "util_memory"), &m))
        r = R_NOT_SUPPORTED;
    else
        *u = (struct fake_nvml_utilization){ (unsigned)g, (unsigned)m };
    pthread_mutex_unlock(&lock);
    return r;
}

static int memory_values(void *d, const char *fn, unsigned long long *total,
                         unsigned long long *reserved, unsigned long long *used,
                         unsigned long long *free_)
{
    unsigned gpu;
    int r = dev_enter(d, fn, &gpu);

    if (r != R_SUCCESS)
        return r;
    if (!to_u64(gpu_get_locked(gpu, "memory_total"), total) ||
        !to_u64(gpu_get_locked(gpu, "memory_used"), used) ||
        !to_u64(gpu_get_locked(gpu, "memory_free"), free_))
        r = R_NOT_SUPPORTED;
    if (!to_u64(gpu_get_locked(gpu, "memory_reserved"), reserved))
        *reserved = 0;
    pthread_mutex_unlock(&lock);
    return r;
}

int nvmlDeviceGetMemoryInfo_v2(void *d, struct fake_nvml_memory_v2 *m)
{
    unsigned long long t = 0, res = 0, u = 0, f = 0;
    int r;

    if (!m)
        return R_INVALID_ARGUMENT;
    if (m->version != ((unsigned)sizeof *m | (2u << 24)))
        return R_ARGUMENT_VERSION_MISMATCH;
    r = memory_values(d, "nvmlDeviceGetMemoryInfo_v2", &t, &res, &u, &f);
    if (r == R_SUCCESS) {
        m->total = t;
        m->reserved = res;
        m->used = u;
        m->free = f;
    }
    return r;
}

int nvmlDeviceGetMemoryInfo(void *d, struct fake_nvml_memory *m)
{
    unsigned long long t = 0, res = 0, u = 0, f = 0;
    int r;

    if (!m)
        return R_INVALID_ARGUMENT;
    if (v1_rejected())
        return R_UNKNOWN;
    r = memory_values(d, "nvmlDeviceGetMemoryInfo", &t, &res, &u, &f);
    if (r == R_SUCCESS) { /* v1 "used" includes the reserved memory */
        m->total = t;
        m->used = u + res;
        m->free = f;
    }
    return r;
}

int nvmlDeviceGetTemperatureV(void *d, struct fake_nvml_temperature *t)
{
    unsigned long long v = 0;
    int r;

    if (!t)
        return R_INVALID_ARGUMENT;
    if (t->version != ((unsigned)sizeof *t | (1u << 24)))
        return R_ARGUMENT_VERSION_MISMATCH;
    if (t->sensor_type != 0)
        return R_INVALID_ARGUMENT;
    r = dev_u64(d, "nvmlDeviceGetTemperatureV", "temperature", &v);
    if (r == R_SUCCESS)
        t->temperature = (int)v;
    return r;
}

int nvmlDeviceGetTemperature(void *d, int sensor, unsigned int *t)
{
    if (sensor != 0)
        return R_INVALID_ARGUMENT;
    if (v1_rejected())
        return R_UNKNOWN;
    return dev_uint(d, "nvmlDeviceGetTemperature", "temperature", t);
}

int nvmlDeviceGetPowerUsage(void *d, unsigned int *v)
{
    return dev_uint(d, "nvmlDeviceGetPowerUsage", "power_usage_mw", v);
}

int nvmlDeviceGetEnforcedPowerLimit(void *d, unsigned int *v)
{
    return dev_uint(d, "nvmlDeviceGetEnforcedPowerLimit", "power_limit_mw", v);
}

int nvmlDeviceGetTotalEnergyConsumption(void *d, unsigned long long *v)
{
    if (!v)
        return R_INVALID_ARGUMENT;
    return dev_u64(d, "nvmlDeviceGetTotalEnergyConsumption", "energy_mj", v);
}

static const char *const clock_names[] = { "graphics", "sm", "mem", "video" };

int nvmlDeviceGetClockInfo(void *d, int type, unsigned int *v)
{
    char key[32];

    if (type < 0 || type > 3)
        return R_INVALID_ARGUMENT;
    (void)snprintf(key, sizeof key, "clock_%s", clock_names[type]);
    return dev_uint(d, "nvmlDeviceGetClockInfo", key, v);
}

int nvmlDeviceGetMaxClockInfo(void *d, int type, unsigned int *v)
{
    char key[32];

    if (type < 0 || type > 3)
        return R_INVALID_ARGUMENT;
    (void)snprintf(key, sizeof key, "max_clock_%s", clock_names[type]);
    return dev_uint(d, "nvmlDeviceGetMaxClockInfo", key, v);
}

int nvmlDeviceGetCurrentClocksEventReasons(void *d, unsigned long long *v)
{
    if (!v)
        return R_INVALID_ARGUMENT;
    return dev_u64(d, "nvmlDeviceGetCurrentClocksEventReasons", "clocks_event_reasons", v);
}

int nvmlDeviceGetPerformanceState(void *d, int *v)
{
    unsigned long long x = 0;
    int r;

    if (!v)
        return R_INVALID_ARGUMENT;
    r = dev_u64(d, "nvmlDeviceGetPerformanceState", "pstate", &x);
    if (r == R_SUCCESS)
        *v = (int)x;
    return r;
}

int nvmlDeviceGetFanSpeed(void *d, unsigned int *v)
{
    return dev_uint(d, "nvmlDeviceGetFanSpeed", "fan_speed", v);
}

int nvmlDeviceGetEccMode(void *d, int *cur, int *pending)
{
    unsigned long long x = 0;
    int r;

    if (!cur || !pending)
        return R_INVALID_ARGUMENT;
    r = dev_u64(d, "nvmlDeviceGetEccMode", "ecc_mode", &x);
    if (r == R_SUCCESS)
        *cur = *pending = x ? 1 : 0;
    return r;
}

int nvmlDeviceGetTotalEccErrors(void *d, int type, int counter, unsigned long long *v)
{
    char key[64];

    if (!v || type < 0 || type > 1 || counter < 0 || counter > 1)
        return R_INVALID_ARGUMENT;
    (void)snprintf(key, sizeof key, "ecc_%s_%s", type ? "uncorrected" : "corrected",
                   counter ? "aggregate" : "volatile");
    return dev_u64(d, "nvmlDeviceGetTotalEccErrors", key, v);
}

int nvmlDeviceGetRetiredPages(void *d, int cause, unsigned int *count, unsigned long long *addr)
{
    unsigned long long n = 0;
    int r;

    if (!count || cause < 0 || cause > 1)
        return R_INVALID_ARGUMENT;
    r = dev_u64(d, "nvmlDeviceGetRetiredPages", cause ? "retired_dbe" : "retired_sbe", &n);
    if (r != R_SUCCESS)
        return r;
    if (*count < n || !addr) {
        *count = (unsigned)n;
        return n ? R_INSUFFICIENT_SIZE : R_SUCCESS;
    }
    for (unsigned i = 0; i < n; i++)
        addr[i] = 0x1000ull * (i + 1);
    *count = (unsigned)n;
    return R_SUCCESS;
}

int nvmlDeviceGetRetiredPagesPendingStatus(void *d, int *v)
{
    unsigned long long x = 0;
    int r;

    if (!v)
        return R_INVALID_ARGUMENT;
    r = dev_u64(d, "nvmlDeviceGetRetiredPagesPendingStatus", "retired_pending", &x);
    if (r == R_SUCCESS)
        *v = x ? 1 : 0;
    return r;
}

int nvmlDeviceGetRemappedRows(void *d, unsigned int *corr, unsigned int *unc, unsigned int *pending,
                              unsigned int *failure)
{
    unsigned long long c = 0, u = 0, p = 0, f = 0;
    unsigned gpu;
    int r;

    if (!corr || !unc || !pending || !failure)
        return R_INVALID_ARGUMENT;
    r = dev_enter(d, "nvmlDeviceGetRemappedRows", &gpu);
    if (r != R_SUCCESS)
        return r;
    if (!to_u64(gpu_get_locked(gpu, "remapped_correctable"), &c) ||
        !to_u64(gpu_get_locked(gpu, "remapped_uncorrectable"), &u) ||
        !to_u64(gpu_get_locked(gpu, "remapped_pending"), &p) ||
        !to_u64(gpu_get_locked(gpu, "remapped_failure"), &f)) {
        r = R_NOT_SUPPORTED;
    } else {
        *corr = (unsigned)c;
        *unc = (unsigned)u;
        *pending = (unsigned)p;
        *failure = (unsigned)f;
    }
    pthread_mutex_unlock(&lock);
    return r;
}

int nvmlDeviceGetPcieReplayCounter(void *d, unsigned int *v)
{
    return dev_uint(d, "nvmlDeviceGetPcieReplayCounter", "pcie_replay", v);
}

int nvmlDeviceGetCurrPcieLinkGeneration(void *d, unsigned int *v)
{
    return dev_uint(d, "nvmlDeviceGetCurrPcieLinkGeneration", "pcie_gen", v);
}

int nvmlDeviceGetCurrPcieLinkWidth(void *d, unsigned int *v)
{
    return dev_uint(d, "nvmlDeviceGetCurrPcieLinkWidth", "pcie_width", v);
}

int nvmlDeviceGetNvLinkState(void *d, unsigned int link, int *v)
{
    const char *s;
    unsigned gpu, i = 0;
    int r;

    if (!v)
        return R_INVALID_ARGUMENT;
    r = dev_enter(d, "nvmlDeviceGetNvLinkState", &gpu);
    if (r != R_SUCCESS)
        return r;
    s = gpu_get_locked(gpu, "nvlink");
    if (!s) {
        pthread_mutex_unlock(&lock);
        return R_NOT_SUPPORTED;
    }
    r = R_INVALID_ARGUMENT;
    for (const char *p = s; *p; p++) {
        if (*p != '0' && *p != '1')
            continue;
        if (i++ == link) {
            *v = *p == '1';
            r = R_SUCCESS;
            break;
        }
    }
    pthread_mutex_unlock(&lock);
    return r;
}

int nvmlDeviceGetFieldValues(void *d, int n, struct fake_nvml_field_value *v)
{
    unsigned gpu;
    int r;

    if (n <= 0 || !v)
        return R_INVALID_ARGUMENT;
    r = dev_enter(d, "nvmlDeviceGetFieldValues", &gpu);
    if (r != R_SUCCESS)
        return r;
    for (int i = 0; i < n; i++) {
        const char *key = v[i].field_id == 82    ? "memory_temperature"
                          : v[i].field_id == 230 ? "recovery_action"
                                                 : NULL;
        unsigned long long x = 0;

        v[i].timestamp = 1;
        v[i].latency_usec = 0;
        if (key && to_u64(gpu_get_locked(gpu, key), &x)) {
            v[i].value_type = 1; /* NVML_VALUE_TYPE_UNSIGNED_INT */
            v[i].value.ui = (unsigned)x;
            v[i].nvml_return = R_SUCCESS;
        } else {
            v[i].nvml_return = R_NOT_SUPPORTED;
        }
    }
    pthread_mutex_unlock(&lock);
    return R_SUCCESS;
}

int nvmlDeviceGetSupportedEventTypes(void *d, unsigned long long *v)
{
    if (!v)
        return R_INVALID_ARGUMENT;
    return dev_u64(d, "nvmlDeviceGetSupportedEventTypes", "supported_events", v);
}

/* ===== Events ===== */

int nvmlEventSetCreate(void **set)
{
    struct fake_set *s;

    if (!set)
        return R_INVALID_ARGUMENT;
    s = calloc(1, sizeof *s);
    if (!s)
        return 20; /* NVML_ERROR_MEMORY */
    pthread_mutex_lock(&lock);
    load_locked();
    s->last_seq = max_seq_locked();
    pthread_mutex_unlock(&lock);
    *set = s;
    return R_SUCCESS;
}

int nvmlDeviceRegisterEvents(void *d, unsigned long long types, void *set)
{
    struct fake_set *s = set;
    unsigned gpu;
    int r;

    if (!s)
        return R_INVALID_ARGUMENT;
    r = dev_enter(d, "nvmlDeviceRegisterEvents", &gpu);
    if (r != R_SUCCESS)
        return r;
    if (types & 0x8ull) /* XidCriticalError: the only type the fake raises */
        s->gpus |= 1ull << gpu;
    pthread_mutex_unlock(&lock);
    return R_SUCCESS;
}

int nvmlEventSetWait_v2(void *set, struct fake_nvml_event_data *e, unsigned int timeout_ms)
{
    struct fake_set *s = set;
    struct timespec t0, now;

    if (!s || !e)
        return R_INVALID_ARGUMENT;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        const struct xid_event *best = NULL;
        unsigned long long v = 0;
        bool lost = false;
        long elapsed_ms;

        pthread_mutex_lock(&lock);
        load_locked();
        for (size_t i = 0; i < st.n_xids; i++) {
            const struct xid_event *x = &st.xids[i];

            if (x->seq > s->last_seq && x->gpu < MAX_GPUS && (s->gpus & (1ull << x->gpu)) &&
                (!best || x->seq < best->seq))
                best = x;
        }
        if (best) {
            memset(e, 0, sizeof *e);
            e->device = &devs[best->gpu];
            e->event_type = 0x8ull;
            e->event_data = best->xid;
            e->gpu_instance_id = e->compute_instance_id = 0xFFFFFFFFu;
            s->last_seq = best->seq;
            pthread_mutex_unlock(&lock);
            return R_SUCCESS;
        }
        for (unsigned g = 0; g < MAX_GPUS; g++)
            if ((s->gpus & (1ull << g)) && to_u64(gpu_get_locked(g, "lost"), &v) && v)
                lost = true;
        pthread_mutex_unlock(&lock);
        if (lost)
            return R_GPU_IS_LOST;
        clock_gettime(CLOCK_MONOTONIC, &now);
        elapsed_ms = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
        if (elapsed_ms >= (long)timeout_ms)
            return R_TIMEOUT;
        sleep_ms(20); /* polls the state file: a real driver blocks in the kernel */
    }
}

int nvmlEventSetWait(void *set, struct fake_nvml_event_data *e, unsigned int timeout_ms)
{
    return v1_rejected() ? R_UNKNOWN : nvmlEventSetWait_v2(set, e, timeout_ms);
}

int nvmlEventSetFree(void *set)
{
    free(set);
    return R_SUCCESS;
}
