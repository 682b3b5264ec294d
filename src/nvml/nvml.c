/* SPDX-License-Identifier: MIT */
/* nvml.c - dlopen()-based NVML binding.  The ABI declarations below are ours (from the layouts
 * in research/gpu.md §3.2-3.4, checked against nvml.h 13.x on x86_64 LP64): we never include
 * nvml.h, so the agent builds and starts on machines without the NVIDIA driver. */
#include "nvml.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

/* ===== NVML ABI (our own declarations) ===== */

typedef int nvml_abi_ret; /* nvmlReturn_t */

struct nvml_abi_utilization {
    unsigned int gpu, memory;
};

struct nvml_abi_memory { /* nvmlMemory_t */
    unsigned long long total, free, used;
};

struct nvml_abi_memory_v2 { /* nvmlMemory_v2_t, 40 bytes */
    unsigned int version;
    unsigned long long total, reserved, free, used;
};
#define NVML_ABI_MEMORY_V2_VERSION ((unsigned)sizeof(struct nvml_abi_memory_v2) | (2u << 24))

struct nvml_abi_temperature { /* nvmlTemperature_t, 12 bytes */
    unsigned int version;
    int sensor_type;
    int temperature;
};
#define NVML_ABI_TEMPERATURE_VERSION ((unsigned)sizeof(struct nvml_abi_temperature) | (1u << 24))

struct nvml_abi_pci { /* nvmlPciInfo_t, 68 bytes */
    char bus_id_legacy[16];
    unsigned int domain, bus, device, pci_device_id, pci_subsystem_id;
    char bus_id[32];
};

struct nvml_abi_event_data { /* nvmlEventData_t, 32 bytes */
    void *device;
    unsigned long long event_type;
    unsigned long long event_data;
    unsigned int gpu_instance_id;
    unsigned int compute_instance_id;
};

union nvml_abi_value { /* nvmlValue_t */
    double d;
    int si;
    unsigned int ui;
    unsigned long ul;
    unsigned long long ull;
    signed long long sll;
    unsigned short us;
};

struct nvml_abi_field_value { /* nvmlFieldValue_t, 40 bytes */
    unsigned int field_id;
    unsigned int scope_id;
    long long timestamp;
    long long latency_usec;
    int value_type; /* nvmlValueType_t */
    nvml_abi_ret nvml_return;
    union nvml_abi_value value;
};

enum nvml_abi_value_type {
    NVML_ABI_VALUE_DOUBLE = 0,
    NVML_ABI_VALUE_UINT = 1,
    NVML_ABI_VALUE_ULONG = 2,
    NVML_ABI_VALUE_ULONGLONG = 3,
    NVML_ABI_VALUE_SLONGLONG = 4,
    NVML_ABI_VALUE_SINT = 5,
    NVML_ABI_VALUE_USHORT = 6,
};

_Static_assert(sizeof(struct nvml_abi_memory_v2) == 40, "nvmlMemory_v2_t layout");
_Static_assert(sizeof(struct nvml_abi_pci) == 68, "nvmlPciInfo_t layout");
_Static_assert(offsetof(struct nvml_abi_pci, bus_id) == 36, "nvmlPciInfo_t.busId offset");
_Static_assert(sizeof(struct nvml_abi_event_data) == 32, "nvmlEventData_t layout");
_Static_assert(sizeof(struct nvml_abi_field_value) == 40, "nvmlFieldValue_t layout");
_Static_assert(offsetof(struct nvml_abi_field_value, value) == 32, "nvmlFieldValue_t.value");

/* ===== Symbol table ===== */

/* Symbol names per wrapped function, preferred (versioned) first; NULL-terminated. */
static const char *const fn_symbols[_NVML_FN_MAX][4] = {
    [NVML_FN_INIT] = { "nvmlInit_v2", "nvmlInit", NULL },
    [NVML_FN_SYSTEM_GET_DRIVER_VERSION] = { "nvmlSystemGetDriverVersion", NULL },
    [NVML_FN_SYSTEM_GET_NVML_VERSION] = { "nvmlSystemGetNVMLVersion", NULL },
    [NVML_FN_SYSTEM_GET_CUDA_DRIVER_VERSION] = { "nvmlSystemGetCudaDriverVersion_v2",
                                                 "nvmlSystemGetCudaDriverVersion", NULL },
    [NVML_FN_DEVICE_GET_COUNT] = { "nvmlDeviceGetCount_v2", "nvmlDeviceGetCount", NULL },
    [NVML_FN_DEVICE_GET_HANDLE_BY_INDEX] = { "nvmlDeviceGetHandleByIndex_v2",
                                             "nvmlDeviceGetHandleByIndex", NULL },
    [NVML_FN_DEVICE_GET_UUID] = { "nvmlDeviceGetUUID", NULL },
    [NVML_FN_DEVICE_GET_NAME] = { "nvmlDeviceGetName", NULL },
    /* The unversioned nvmlDeviceGetPciInfo fills an older, shorter struct: never used. */
    [NVML_FN_DEVICE_GET_PCI_INFO] = { "nvmlDeviceGetPciInfo_v3", "nvmlDeviceGetPciInfo_v2", NULL },
    [NVML_FN_DEVICE_GET_MINOR_NUMBER] = { "nvmlDeviceGetMinorNumber", NULL },
    [NVML_FN_DEVICE_GET_UTILIZATION_RATES] = { "nvmlDeviceGetUtilizationRates", NULL },
    [NVML_FN_DEVICE_GET_MEMORY_INFO] = { "nvmlDeviceGetMemoryInfo_v2", "nvmlDeviceGetMemoryInfo",
                                         NULL },
    [NVML_FN_DEVICE_GET_TEMPERATURE] = { "nvmlDeviceGetTemperatureV", "nvmlDeviceGetTemperature",
                                         NULL },
    [NVML_FN_DEVICE_GET_POWER_USAGE] = { "nvmlDeviceGetPowerUsage", NULL },
    [NVML_FN_DEVICE_GET_ENFORCED_POWER_LIMIT] = { "nvmlDeviceGetEnforcedPowerLimit", NULL },
    [NVML_FN_DEVICE_GET_TOTAL_ENERGY_CONSUMPTION] = { "nvmlDeviceGetTotalEnergyConsumption", NULL },
    [NVML_FN_DEVICE_GET_CLOCK_INFO] = { "nvmlDeviceGetClockInfo", NULL },
    [NVML_FN_DEVICE_GET_MAX_CLOCK_INFO] = { "nvmlDeviceGetMaxClockInfo", NULL },
    [NVML_FN_DEVICE_GET_CLOCKS_EVENT_REASONS] = { "nvmlDeviceGetCurrentClocksEventReasons",
                                                  "nvmlDeviceGetCurrentClocksThrottleReasons",
                                                  NULL },
    [NVML_FN_DEVICE_GET_PERFORMANCE_STATE] = { "nvmlDeviceGetPerformanceState", NULL },
    [NVML_FN_DEVICE_GET_FAN_SPEED] = { "nvmlDeviceGetFanSpeed", NULL },
    [NVML_FN_DEVICE_GET_ECC_MODE] = { "nvmlDeviceGetEccMode", NULL },
    [NVML_FN_DEVICE_GET_TOTAL_ECC_ERRORS] = { "nvmlDeviceGetTotalEccErrors", NULL },
    [NVML_FN_DEVICE_GET_RETIRED_PAGES] = { "nvmlDeviceGetRetiredPages", NULL },
    [NVML_FN_DEVICE_GET_RETIRED_PAGES_PENDING_STATUS] = { "nvmlDeviceGetRetiredPagesPendingStatus",
                                                          NULL },
    [NVML_FN_DEVICE_GET_REMAPPED_ROWS] = { "nvmlDeviceGetRemappedRows", NULL },
    [NVML_FN_DEVICE_GET_PCIE_REPLAY_COUNTER] = { "nvmlDeviceGetPcieReplayCounter", NULL },
    [NVML_FN_DEVICE_GET_CURR_PCIE_LINK_GENERATION] = { "nvmlDeviceGetCurrPcieLinkGeneration",
                                                       NULL },
    [NVML_FN_DEVICE_GET_CURR_PCIE_LINK_WIDTH] = { "nvmlDeviceGetCurrPcieLinkWidth", NULL },
    [NVML_FN_DEVICE_GET_NVLINK_STATE] = { "nvmlDeviceGetNvLinkState", NULL },
    [NVML_FN_DEVICE_GET_FIELD_VALUES] = { "nvmlDeviceGetFieldValues", NULL },
    [NVML_FN_DEVICE_GET_SUPPORTED_EVENT_TYPES] = { "nvmlDeviceGetSupportedEventTypes", NULL },
    [NVML_FN_EVENT_SET_CREATE] = { "nvmlEventSetCreate", NULL },
    [NVML_FN_DEVICE_REGISTER_EVENTS] = { "nvmlDeviceRegisterEvents", NULL },
    [NVML_FN_EVENT_SET_WAIT] = { "nvmlEventSetWait_v2", "nvmlEventSetWait", NULL },
    [NVML_FN_EVENT_SET_FREE] = { "nvmlEventSetFree", NULL },
};

/* Error counters: codes 1..30 get a slot each, anything else shares the last one. */
#define NVML_RET_SLOTS 32

struct nvml {
    void *dl;
    void *sym[_NVML_FN_MAX];
    unsigned variant[_NVML_FN_MAX]; /* index into fn_symbols[fn] of the resolved symbol */
    nvml_abi_ret (*shutdown)(void);
    const char *(*error_string)(nvml_abi_ret);
    _Atomic uint64_t errors[_NVML_FN_MAX][NVML_RET_SLOTS];
};

static unsigned ret_slot(enum nvml_ret st)
{
    return (unsigned)st > 0 && (unsigned)st < NVML_RET_SLOTS - 1 ? (unsigned)st
                                                                 : NVML_RET_SLOTS - 1;
}

/* Records a non-success status and passes it through. */
static enum nvml_ret note(struct nvml *n, enum nvml_fn fn, nvml_abi_ret st)
{
    if (st != NVML_RET_SUCCESS && st != NVML_RET_NOT_SUPPORTED)
        atomic_fetch_add_explicit(&n->errors[fn][ret_slot((enum nvml_ret)st)], 1,
                                  memory_order_relaxed);
    return (enum nvml_ret)st;
}

/* Casting a data pointer from dlsym() to a function pointer is what POSIX requires to work;
 * going through memcpy keeps -Wpedantic quiet about it. */
#define NVML_FN_PTR(n_, fn_, var_, args_)    \
    nvml_abi_ret(*var_) args_;               \
    do {                                     \
        void *p__ = (n_)->sym[(fn_)];        \
        memcpy(&(var_), &p__, sizeof(var_)); \
    } while (0)

#define NVML_REQUIRE(n_, fn_)                                                                      \
    do {                                                                                           \
        if (!(n_) || !(n_)->sym[(fn_)])                                                            \
            return (n_) ? note((n_), (fn_), NVML_RET_FUNCTION_NOT_FOUND) : NVML_RET_UNINITIALIZED; \
    } while (0)

bool nvml_has(const struct nvml *n, enum nvml_fn fn)
{
    return n && (unsigned)fn < _NVML_FN_MAX && n->sym[fn];
}

const char *nvml_fn_name(const struct nvml *n, enum nvml_fn fn)
{
    if ((unsigned)fn >= _NVML_FN_MAX)
        return "unknown";
    return fn_symbols[fn][n && n->sym[fn] ? n->variant[fn] : 0];
}

uint64_t nvml_error_count(const struct nvml *n, enum nvml_fn fn, enum nvml_ret st)
{
    if (!n || (unsigned)fn >= _NVML_FN_MAX || st == NVML_RET_SUCCESS)
        return 0;
    return atomic_load_explicit(&n->errors[fn][ret_slot(st)], memory_order_relaxed);
}

void nvml_error_foreach(const struct nvml *n,
                        void (*cb)(enum nvml_fn fn, enum nvml_ret st, uint64_t count,
                                   void *userdata),
                        void *userdata)
{
    if (!n)
        return;
    for (unsigned fn = 0; fn < _NVML_FN_MAX; fn++)
        for (unsigned s = 1; s < NVML_RET_SLOTS; s++) {
            uint64_t c = atomic_load_explicit(&n->errors[fn][s], memory_order_relaxed);

            if (c > 0)
                cb((enum nvml_fn)fn, s == NVML_RET_SLOTS - 1 ? NVML_RET_UNKNOWN : (enum nvml_ret)s,
                   c, userdata);
        }
}

const char *nvml_ret_name(enum nvml_ret st)
{
    static const char *const names[] = {
        [NVML_RET_SUCCESS] = "success",
        [NVML_RET_UNINITIALIZED] = "uninitialized",
        [NVML_RET_INVALID_ARGUMENT] = "invalid_argument",
        [NVML_RET_NOT_SUPPORTED] = "not_supported",
        [NVML_RET_NO_PERMISSION] = "no_permission",
        [NVML_RET_ALREADY_INITIALIZED] = "already_initialized",
        [NVML_RET_NOT_FOUND] = "not_found",
        [NVML_RET_INSUFFICIENT_SIZE] = "insufficient_size",
        [NVML_RET_INSUFFICIENT_POWER] = "insufficient_power",
        [NVML_RET_DRIVER_NOT_LOADED] = "driver_not_loaded",
        [NVML_RET_TIMEOUT] = "timeout",
        [NVML_RET_IRQ_ISSUE] = "irq_issue",
        [NVML_RET_LIBRARY_NOT_FOUND] = "library_not_found",
        [NVML_RET_FUNCTION_NOT_FOUND] = "function_not_found",
        [NVML_RET_CORRUPTED_INFOROM] = "corrupted_inforom",
        [NVML_RET_GPU_IS_LOST] = "gpu_is_lost",
        [NVML_RET_RESET_REQUIRED] = "reset_required",
        [NVML_RET_OPERATING_SYSTEM] = "operating_system",
        [NVML_RET_LIB_RM_VERSION_MISMATCH] = "lib_rm_version_mismatch",
        [NVML_RET_IN_USE] = "in_use",
        [NVML_RET_MEMORY] = "memory",
        [NVML_RET_NO_DATA] = "no_data",
        [NVML_RET_VGPU_ECC_NOT_SUPPORTED] = "vgpu_ecc_not_supported",
        [NVML_RET_INSUFFICIENT_RESOURCES] = "insufficient_resources",
        [NVML_RET_FREQ_NOT_SUPPORTED] = "freq_not_supported",
        [NVML_RET_ARGUMENT_VERSION_MISMATCH] = "argument_version_mismatch",
        [NVML_RET_DEPRECATED] = "deprecated",
        [NVML_RET_NOT_READY] = "not_ready",
        [NVML_RET_GPU_NOT_FOUND] = "gpu_not_found",
        [NVML_RET_INVALID_STATE] = "invalid_state",
        [NVML_RET_RESET_TYPE_NOT_SUPPORTED] = "reset_type_not_supported",
    };

    if ((unsigned)st < ARRAY_SIZE(names) && names[st])
        return names[st];
    return "unknown";
}

const char *nvml_ret_string(const struct nvml *n, enum nvml_ret st)
{
    const char *s = n && n->error_string ? n->error_string((nvml_abi_ret)st) : NULL;

    return s ? s : nvml_ret_name(st);
}

/* ===== Lifetime ===== */

static void *resolve(void *dl, const char *name)
{
    (void)dlerror();
    return dlsym(dl, name);
}

int nvml_open(const char *library, struct nvml **ret, int *reterr_status, struct err *reterr)
{
    const char *lib = library && library[0] ? library : "libnvidia-ml.so.1";
    struct nvml *n;
    nvml_abi_ret st;
    void *p;
    int r;

    n = calloc(1, sizeof *n);
    if (!n)
        return -ENOMEM;
    /* RTLD_LOCAL: the NVML symbols must not leak into the global namespace, where a second
     * copy (the tests load the fake and could load a real one) would shadow them. */
    n->dl = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    if (!n->dl) {
        const char *e = dlerror();

        r = err_set(reterr, -ENOENT, 0, 0, "cannot load '%s': %s", lib, e ? e : "unknown error");
        goto fail;
    }
    for (unsigned fn = 0; fn < _NVML_FN_MAX; fn++)
        for (unsigned v = 0; fn_symbols[fn][v]; v++) {
            p = resolve(n->dl, fn_symbols[fn][v]);
            if (p) {
                n->sym[fn] = p;
                n->variant[fn] = v;
                break;
            }
        }
    p = resolve(n->dl, "nvmlShutdown");
    memcpy(&n->shutdown, &p, sizeof p);
    p = resolve(n->dl, "nvmlErrorString");
    memcpy(&n->error_string, &p, sizeof p);
    if (!n->sym[NVML_FN_INIT]) {
        r = err_set(reterr, -ENOSYS, 0, 0, "'%s' does not export nvmlInit_v2 or nvmlInit", lib);
        goto fail;
    }
    {
        NVML_FN_PTR(n, NVML_FN_INIT, init, (void));
        st = init();
    }
    if (st != NVML_RET_SUCCESS) {
        (void)note(n, NVML_FN_INIT, st);
        if (reterr_status)
            *reterr_status = st;
        r = err_set(reterr, -EIO, 0, 0, "%s() failed: %s (%d)", nvml_fn_name(n, NVML_FN_INIT),
                    nvml_ret_string(n, (enum nvml_ret)st), st);
        goto fail;
    }
    *ret = n;
    return 0;
fail:
    if (n->dl)
        (void)dlclose(n->dl);
    free(n);
    return r;
}

struct nvml *nvml_close(struct nvml *n)
{
    if (!n)
        return NULL;
    if (n->shutdown)
        (void)n->shutdown();
    if (n->dl)
        (void)dlclose(n->dl);
    free(n);
    return NULL;
}

/* ===== Wrappers ===== */

static enum nvml_ret string_call(struct nvml *n, enum nvml_fn fn, char *buf, unsigned size)
{
    nvml_abi_ret st;

    NVML_REQUIRE(n, fn);
    if (!buf || size == 0)
        return NVML_RET_INVALID_ARGUMENT;
    buf[0] = '\0';
    {
        NVML_FN_PTR(n, fn, f, (char *, unsigned));
        st = f(buf, size);
    }
    buf[size - 1] = '\0';
    return note(n, fn, st);
}

enum nvml_ret nvml_system_driver_version(struct nvml *n, char *buf, unsigned size)
{
    return string_call(n, NVML_FN_SYSTEM_GET_DRIVER_VERSION, buf, size);
}

enum nvml_ret nvml_system_nvml_version(struct nvml *n, char *buf, unsigned size)
{
    return string_call(n, NVML_FN_SYSTEM_GET_NVML_VERSION, buf, size);
}

enum nvml_ret nvml_system_cuda_driver_version(struct nvml *n, int *ret)
{
    NVML_REQUIRE(n, NVML_FN_SYSTEM_GET_CUDA_DRIVER_VERSION);
    NVML_FN_PTR(n, NVML_FN_SYSTEM_GET_CUDA_DRIVER_VERSION, f, (int *));
    return note(n, NVML_FN_SYSTEM_GET_CUDA_DRIVER_VERSION, f(ret));
}

enum nvml_ret nvml_device_count(struct nvml *n, unsigned *ret)
{
    NVML_REQUIRE(n, NVML_FN_DEVICE_GET_COUNT);
    NVML_FN_PTR(n, NVML_FN_DEVICE_GET_COUNT, f, (unsigned *));
    return note(n, NVML_FN_DEVICE_GET_COUNT, f(ret));
}

enum nvml_ret nvml_device_by_index(struct nvml *n, unsigned index, struct nvml_device **ret)
{
    void *h = NULL;
    nvml_abi_ret st;

    NVML_REQUIRE(n, NVML_FN_DEVICE_GET_HANDLE_BY_INDEX);
    NVML_FN_PTR(n, NVML_FN_DEVICE_GET_HANDLE_BY_INDEX, f, (unsigned, void **));
    st = f(index, &h);
    if (st == NVML_RET_SUCCESS)
        *ret = h;
    return note(n, NVML_FN_DEVICE_GET_HANDLE_BY_INDEX, st);
}

static enum nvml_ret device_string(struct nvml *n, enum nvml_fn fn, struct nvml_device *d,
                                   char *buf, unsigned size)
{
    nvml_abi_ret st;

    NVML_REQUIRE(n, fn);
    if (!buf || size == 0)
        return NVML_RET_INVALID_ARGUMENT;
    buf[0] = '\0';
    {
        NVML_FN_PTR(n, fn, f, (void *, char *, unsigned));
        st = f(d, buf, size);
    }
    buf[size - 1] = '\0';
    return note(n, fn, st);
}

enum nvml_ret nvml_device_uuid(struct nvml *n, struct nvml_device *d, char *buf, unsigned size)
{
    return device_string(n, NVML_FN_DEVICE_GET_UUID, d, buf, size);
}

enum nvml_ret nvml_device_name(struct nvml *n, struct nvml_device *d, char *buf, unsigned size)
{
    return device_string(n, NVML_FN_DEVICE_GET_NAME, d, buf, size);
}

enum nvml_ret nvml_device_pci(struct nvml *n, struct nvml_device *d, struct nvml_pci *ret)
{
    struct nvml_abi_pci pci;
    nvml_abi_ret st;

    NVML_REQUIRE(n, NVML_FN_DEVICE_GET_PCI_INFO);
    memset(&pci, 0, sizeof pci);
    {
        NVML_FN_PTR(n, NVML_FN_DEVICE_GET_PCI_INFO, f, (void *, struct nvml_abi_pci *));
        st = f(d, &pci);
    }
    if (st == NVML_RET_SUCCESS) {
        *ret = (struct nvml_pci){ .domain = pci.domain,
                                  .bus = pci.bus,
                                  .device = pci.device,
                                  .pci_device_id = pci.pci_device_id,
                                  .pci_subsystem_id = pci.pci_subsystem_id };
        memcpy(ret->bus_id, pci.bus_id, sizeof ret->bus_id);
        ret->bus_id[sizeof ret->bus_id - 1] = '\0';
    }
    return note(n, NVML_FN_DEVICE_GET_PCI_INFO, st);
}

/* nvmlReturn_t f(nvmlDevice_t, unsigned int *) */
static enum nvml_ret device_uint(struct nvml *n, enum nvml_fn fn, struct nvml_device *d,
                                 unsigned *ret)
{
    NVML_REQUIRE(n, fn);
    NVML_FN_PTR(n, fn, f, (void *, unsigned *));
    return note(n, fn, f(d, ret));
}

/* nvmlReturn_t f(nvmlDevice_t, unsigned long long *) */
static enum nvml_ret device_u64(struct nvml *n, enum nvml_fn fn, struct nvml_device *d,
                                uint64_t *ret)
{
    unsigned long long v = 0;
    nvml_abi_ret st;

    NVML_REQUIRE(n, fn);
    {
        NVML_FN_PTR(n, fn, f, (void *, unsigned long long *));
        st = f(d, &v);
    }
    if (st == NVML_RET_SUCCESS)
        *ret = v;
    return note(n, fn, st);
}

/* nvmlReturn_t f(nvmlDevice_t, nvmlEnableState_t *) */
static enum nvml_ret device_bool(struct nvml *n, enum nvml_fn fn, struct nvml_device *d, bool *ret)
{
    int v = 0;
    nvml_abi_ret st;

    NVML_REQUIRE(n, fn);
    {
        NVML_FN_PTR(n, fn, f, (void *, int *));
        st = f(d, &v);
    }
    if (st == NVML_RET_SUCCESS)
        *ret = v != 0;
    return note(n, fn, st);
}

enum nvml_ret nvml_device_minor_number(struct nvml *n, struct nvml_device *d, unsigned *ret)
{
    return device_uint(n, NVML_FN_DEVICE_GET_MINOR_NUMBER, d, ret);
}

enum nvml_ret nvml_device_utilization(struct nvml *n, struct nvml_device *d, unsigned *ret_gpu,
                                      unsigned *ret_memory)
{
    struct nvml_abi_utilization u = { 0, 0 };
    nvml_abi_ret st;

    NVML_REQUIRE(n, NVML_FN_DEVICE_GET_UTILIZATION_RATES);
    {
        NVML_FN_PTR(n, NVML_FN_DEVICE_GET_UTILIZATION_RATES, f,
                    (void *, struct nvml_abi_utilization *));
        st = f(d, &u);
    }
    if (st == NVML_RET_SUCCESS) {
        *ret_gpu = u.gpu;
        *ret_memory = u.memory;
    }
    return note(n, NVML_FN_DEVICE_GET_UTILIZATION_RATES, st);
}

enum nvml_ret nvml_device_memory(struct nvml *n, struct nvml_device *d, struct nvml_memory *ret)
{
    nvml_abi_ret st;

    NVML_REQUIRE(n, NVML_FN_DEVICE_GET_MEMORY_INFO);
    if (n->variant[NVML_FN_DEVICE_GET_MEMORY_INFO] == 0) {
        struct nvml_abi_memory_v2 m = { .version = NVML_ABI_MEMORY_V2_VERSION };
        NVML_FN_PTR(n, NVML_FN_DEVICE_GET_MEMORY_INFO, f, (void *, struct nvml_abi_memory_v2 *));

        st = f(d, &m);
        if (st == NVML_RET_SUCCESS)
            *ret = (struct nvml_memory){ .total = m.total,
                                         .used = m.used,
                                         .free = m.free,
                                         .reserved = m.reserved,
                                         .has_reserved = true };
    } else {
        struct nvml_abi_memory m = { 0, 0, 0 };
        NVML_FN_PTR(n, NVML_FN_DEVICE_GET_MEMORY_INFO, f, (void *, struct nvml_abi_memory *));

        st = f(d, &m);
        if (st == NVML_RET_SUCCESS)
            *ret = (struct nvml_memory){ .total = m.total, .used = m.used, .free = m.free };
    }
    return note(n, NVML_FN_DEVICE_GET_MEMORY_INFO, st);
}

enum nvml_ret nvml_device_temperature(struct nvml *n, struct nvml_device *d, int *ret)
{
    nvml_abi_ret st;

    NVML_REQUIRE(n, NVML_FN_DEVICE_GET_TEMPERATURE);
    if (n->variant[NVML_FN_DEVICE_GET_TEMPERATURE] == 0) {
        struct nvml_abi_temperature t = { .version = NVML_ABI_TEMPERATURE_VERSION,
                                          .sensor_type = 0 /* NVML_TEMPERATURE_GPU */ };
        NVML_FN_PTR(n, NVML_FN_DEVICE_GET_TEMPERATURE, f, (void *, struct nvml_abi_temperature *));

        st = f(d, &t);
        if (st == NVML_RET_SUCCESS)
            *ret = t.temperature;
    } else {
        unsigned t = 0;
        NVML_FN_PTR(n, NVML_FN_DEVICE_GET_TEMPERATURE, f, (void *, int, unsigned *));

        st = f(d, 0, &t);
        if (st == NVML_RET_SUCCESS)
            *ret = t > 1000 ? -1 : (int)t; /* a sentinel: let the caller's range check drop it */
    }
    return note(n, NVML_FN_DEVICE_GET_TEMPERATURE, st);
}

enum nvml_ret nvml_device_power_usage(struct nvml *n, struct nvml_device *d, unsigned *ret)
{
    return device_uint(n, NVML_FN_DEVICE_GET_POWER_USAGE, d, ret);
}

enum nvml_ret nvml_device_power_limit(struct nvml *n, struct nvml_device *d, unsigned *ret)
{
    return device_uint(n, NVML_FN_DEVICE_GET_ENFORCED_POWER_LIMIT, d, ret);
}

enum nvml_ret nvml_device_energy(struct nvml *n, struct nvml_device *d, uint64_t *ret)
{
    return device_u64(n, NVML_FN_DEVICE_GET_TOTAL_ENERGY_CONSUMPTION, d, ret);
}

static enum nvml_ret clock_call(struct nvml *n, enum nvml_fn fn, struct nvml_device *d,
                                enum nvml_clock type, unsigned *ret)
{
    NVML_REQUIRE(n, fn);
    NVML_FN_PTR(n, fn, f, (void *, int, unsigned *));
    return note(n, fn, f(d, (int)type, ret));
}

enum nvml_ret nvml_device_clock(struct nvml *n, struct nvml_device *d, enum nvml_clock type,
                                unsigned *ret)
{
    return clock_call(n, NVML_FN_DEVICE_GET_CLOCK_INFO, d, type, ret);
}

enum nvml_ret nvml_device_max_clock(struct nvml *n, struct nvml_device *d, enum nvml_clock type,
                                    unsigned *ret)
{
    return clock_call(n, NVML_FN_DEVICE_GET_MAX_CLOCK_INFO, d, type, ret);
}

enum nvml_ret nvml_device_clocks_event_reasons(struct nvml *n, struct nvml_device *d, uint64_t *ret)
{
    return device_u64(n, NVML_FN_DEVICE_GET_CLOCKS_EVENT_REASONS, d, ret);
}

enum nvml_ret nvml_device_pstate(struct nvml *n, struct nvml_device *d, unsigned *ret)
{
    int v = 0;
    nvml_abi_ret st;

    NVML_REQUIRE(n, NVML_FN_DEVICE_GET_PERFORMANCE_STATE);
    {
        NVML_FN_PTR(n, NVML_FN_DEVICE_GET_PERFORMANCE_STATE, f, (void *, int *));
        st = f(d, &v);
    }
    if (st == NVML_RET_SUCCESS)
        *ret = (unsigned)v;
    return note(n, NVML_FN_DEVICE_GET_PERFORMANCE_STATE, st);
}

enum nvml_ret nvml_device_fan_speed(struct nvml *n, struct nvml_device *d, unsigned *ret)
{
    return device_uint(n, NVML_FN_DEVICE_GET_FAN_SPEED, d, ret);
}

enum nvml_ret nvml_device_ecc_mode(struct nvml *n, struct nvml_device *d, bool *ret_current)
{
    int cur = 0, pending = 0;
    nvml_abi_ret st;

    NVML_REQUIRE(n, NVML_FN_DEVICE_GET_ECC_MODE);
    {
        NVML_FN_PTR(n, NVML_FN_DEVICE_GET_ECC_MODE, f, (void *, int *, int *));
        st = f(d, &cur, &pending);
    }
    if (st == NVML_RET_SUCCESS)
        *ret_current = cur != 0;
    return note(n, NVML_FN_DEVICE_GET_ECC_MODE, st);
}

enum nvml_ret nvml_device_ecc_errors(struct nvml *n, struct nvml_device *d,
                                     enum nvml_ecc_error type, enum nvml_ecc_counter counter,
                                     uint64_t *ret)
{
    unsigned long long v = 0;
    nvml_abi_ret st;

    NVML_REQUIRE(n, NVML_FN_DEVICE_GET_TOTAL_ECC_ERRORS);
    {
        NVML_FN_PTR(n, NVML_FN_DEVICE_GET_TOTAL_ECC_ERRORS, f,
                    (void *, int, int, unsigned long long *));
        st = f(d, (int)type, (int)counter, &v);
    }
    if (st == NVML_RET_SUCCESS)
        *ret = v;
    return note(n, NVML_FN_DEVICE_GET_TOTAL_ECC_ERRORS, st);
}

enum nvml_ret nvml_device_retired_pages(struct nvml *n, struct nvml_device *d,
                                        enum nvml_retire_cause cause, unsigned *ret)
{
    unsigned count = 0;
    nvml_abi_ret st;

    NVML_REQUIRE(n, NVML_FN_DEVICE_GET_RETIRED_PAGES);
    {
        NVML_FN_PTR(n, NVML_FN_DEVICE_GET_RETIRED_PAGES, f,
                    (void *, int, unsigned *, unsigned long long *));
        /* With room for no address NVML reports the count (SUCCESS when it is 0,
         * INSUFFICIENT_SIZE otherwise). */
        st = f(d, (int)cause, &count, NULL);
    }
    if (st == NVML_RET_INSUFFICIENT_SIZE)
        st = NVML_RET_SUCCESS;
    if (st == NVML_RET_SUCCESS)
        *ret = count;
    return note(n, NVML_FN_DEVICE_GET_RETIRED_PAGES, st);
}

enum nvml_ret nvml_device_retired_pages_pending(struct nvml *n, struct nvml_device *d, bool *ret)
{
    return device_bool(n, NVML_FN_DEVICE_GET_RETIRED_PAGES_PENDING_STATUS, d, ret);
}

enum nvml_ret nvml_device_remapped_rows(struct nvml *n, struct nvml_device *d,
                                        struct nvml_remapped_rows *ret)
{
    unsigned corr = 0, unc = 0, pending = 0, failure = 0;
    nvml_abi_ret st;

    NVML_REQUIRE(n, NVML_FN_DEVICE_GET_REMAPPED_ROWS);
    {
        NVML_FN_PTR(n, NVML_FN_DEVICE_GET_REMAPPED_ROWS, f,
                    (void *, unsigned *, unsigned *, unsigned *, unsigned *));
        st = f(d, &corr, &unc, &pending, &failure);
    }
    if (st == NVML_RET_SUCCESS)
        *ret = (struct nvml_remapped_rows){ .correctable = corr,
                                            .uncorrectable = unc,
                                            .pending = pending != 0,
                                            .failure = failure != 0 };
    return note(n, NVML_FN_DEVICE_GET_REMAPPED_ROWS, st);
}

enum nvml_ret nvml_device_pcie_replay_counter(struct nvml *n, struct nvml_device *d, unsigned *ret)
{
    return device_uint(n, NVML_FN_DEVICE_GET_PCIE_REPLAY_COUNTER, d, ret);
}

enum nvml_ret nvml_device_pcie_link_generation(struct nvml *n, struct nvml_device *d, unsigned *ret)
{
    return device_uint(n, NVML_FN_DEVICE_GET_CURR_PCIE_LINK_GENERATION, d, ret);
}

enum nvml_ret nvml_device_pcie_link_width(struct nvml *n, struct nvml_device *d, unsigned *ret)
{
    return device_uint(n, NVML_FN_DEVICE_GET_CURR_PCIE_LINK_WIDTH, d, ret);
}

enum nvml_ret nvml_device_nvlink_state(struct nvml *n, struct nvml_device *d, unsigned link,
                                       bool *ret)
{
    int v = 0;
    nvml_abi_ret st;

    NVML_REQUIRE(n, NVML_FN_DEVICE_GET_NVLINK_STATE);
    {
        NVML_FN_PTR(n, NVML_FN_DEVICE_GET_NVLINK_STATE, f, (void *, unsigned, int *));
        st = f(d, link, &v);
    }
    if (st == NVML_RET_SUCCESS)
        *ret = v != 0;
    /* Past the last link NVML answers INVALID_ARGUMENT: the end of the list, not an error. */
    if (st == NVML_RET_INVALID_ARGUMENT)
        return NVML_RET_INVALID_ARGUMENT;
    return note(n, NVML_FN_DEVICE_GET_NVLINK_STATE, st);
}

enum nvml_ret nvml_device_field_u64(struct nvml *n, struct nvml_device *d, unsigned field_id,
                                    uint64_t *ret)
{
    struct nvml_abi_field_value fv;
    nvml_abi_ret st;

    NVML_REQUIRE(n, NVML_FN_DEVICE_GET_FIELD_VALUES);
    memset(&fv, 0, sizeof fv);
    fv.field_id = field_id;
    {
        NVML_FN_PTR(n, NVML_FN_DEVICE_GET_FIELD_VALUES, f,
                    (void *, int, struct nvml_abi_field_value *));
        st = f(d, 1, &fv);
    }
    if (st == NVML_RET_SUCCESS)
        st = fv.nvml_return;
    if (st != NVML_RET_SUCCESS)
        return note(n, NVML_FN_DEVICE_GET_FIELD_VALUES, st);
    switch (fv.value_type) {
    case NVML_ABI_VALUE_UINT:
        *ret = fv.value.ui;
        break;
    case NVML_ABI_VALUE_ULONG:
        *ret = fv.value.ul;
        break;
    case NVML_ABI_VALUE_ULONGLONG:
        *ret = fv.value.ull;
        break;
    case NVML_ABI_VALUE_USHORT:
        *ret = fv.value.us;
        break;
    case NVML_ABI_VALUE_SINT:
        if (fv.value.si < 0)
            return NVML_RET_NO_DATA;
        *ret = (uint64_t)fv.value.si;
        break;
    case NVML_ABI_VALUE_SLONGLONG:
        if (fv.value.sll < 0)
            return NVML_RET_NO_DATA;
        *ret = (uint64_t)fv.value.sll;
        break;
    default: /* a double where we expect a count: refuse rather than guess */
        return NVML_RET_NO_DATA;
    }
    return NVML_RET_SUCCESS;
}

/* ===== Events ===== */

enum nvml_ret nvml_device_supported_events(struct nvml *n, struct nvml_device *d, uint64_t *ret)
{
    return device_u64(n, NVML_FN_DEVICE_GET_SUPPORTED_EVENT_TYPES, d, ret);
}

enum nvml_ret nvml_event_set_create(struct nvml *n, struct nvml_event_set **ret)
{
    void *set = NULL;
    nvml_abi_ret st;

    NVML_REQUIRE(n, NVML_FN_EVENT_SET_CREATE);
    {
        NVML_FN_PTR(n, NVML_FN_EVENT_SET_CREATE, f, (void **));
        st = f(&set);
    }
    if (st == NVML_RET_SUCCESS)
        *ret = set;
    return note(n, NVML_FN_EVENT_SET_CREATE, st);
}

enum nvml_ret nvml_device_register_events(struct nvml *n, struct nvml_device *d, uint64_t types,
                                          struct nvml_event_set *set)
{
    NVML_REQUIRE(n, NVML_FN_DEVICE_REGISTER_EVENTS);
    NVML_FN_PTR(n, NVML_FN_DEVICE_REGISTER_EVENTS, f, (void *, unsigned long long, void *));
    return note(n, NVML_FN_DEVICE_REGISTER_EVENTS, f(d, (unsigned long long)types, set));
}

enum nvml_ret nvml_event_set_wait(struct nvml *n, struct nvml_event_set *set,
                                  struct nvml_event *ret, unsigned timeout_ms)
{
    /* nvmlEventSetWait (v1) fills a shorter struct (no instance ids): zeroing the v2 layout
     * keeps the tail defined either way. */
    struct nvml_abi_event_data ev;
    nvml_abi_ret st;

    NVML_REQUIRE(n, NVML_FN_EVENT_SET_WAIT);
    memset(&ev, 0, sizeof ev);
    {
        NVML_FN_PTR(n, NVML_FN_EVENT_SET_WAIT, f, (void *, struct nvml_abi_event_data *, unsigned));
        st = f(set, &ev, timeout_ms);
    }
    if (st == NVML_RET_SUCCESS)
        *ret = (struct nvml_event){ .device = ev.device,
                                    .type = ev.event_type,
                                    .data = ev.event_data };
    /* A timeout is the normal outcome of an idle wait. */
    if (st == NVML_RET_TIMEOUT)
        return NVML_RET_TIMEOUT;
    return note(n, NVML_FN_EVENT_SET_WAIT, st);
}

void nvml_event_set_free(struct nvml *n, struct nvml_event_set *set)
{
    if (!n || !set || !n->sym[NVML_FN_EVENT_SET_FREE])
        return;
    NVML_FN_PTR(n, NVML_FN_EVENT_SET_FREE, f, (void *));
    (void)note(n, NVML_FN_EVENT_SET_FREE, f(set));
}
