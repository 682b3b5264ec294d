/* SPDX-License-Identifier: MIT */
/* nvml.h - NVIDIA Management Library binding loaded with dlopen(): our own declarations of
 * the few NVML types and functions gpu_agent uses (no nvml.h needed to build, no driver needed
 * to start).  Versioned symbols are preferred (nvmlInit_v2, nvmlDeviceGetCount_v2,
 * nvmlDeviceGetHandleByIndex_v2, nvmlDeviceGetPciInfo_v3, nvmlDeviceGetMemoryInfo_v2,
 * nvmlEventSetWait_v2, ...), the unversioned ones are the fallback; a symbol missing from
 * the library makes its wrapper return NVML_RET_FUNCTION_NOT_FOUND.
 *
 * Return values: nvml_open() follows the -errno convention.  The per-call wrappers return
 * NVML's own status (enum nvml_ret, NVML_RET_SUCCESS = 0) instead, because callers act on the
 * exact code (NOT_SUPPORTED: omit the metric; GPU_IS_LOST / RESET_REQUIRED: the GPU failed).
 * Every status other than SUCCESS and NOT_SUPPORTED is counted per function and code
 * (nvml_error_count()).
 *
 * Ownership and threads: struct nvml is owned by the caller of nvml_open() and freed with
 * nvml_close() once no other thread uses it.  Device and event-set handles are NVML's; a
 * device handle is valid until nvml_close(), an event set until nvml_event_set_free().  NVML
 * is thread-safe and so are all wrappers (the error counters are atomics). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "core/macro.h"

struct err;

/* nvmlReturn_t, values as in nvml.h (a C enum is int-sized). */
enum nvml_ret {
    NVML_RET_SUCCESS = 0,
    NVML_RET_UNINITIALIZED = 1,
    NVML_RET_INVALID_ARGUMENT = 2,
    NVML_RET_NOT_SUPPORTED = 3,
    NVML_RET_NO_PERMISSION = 4,
    NVML_RET_ALREADY_INITIALIZED = 5,
    NVML_RET_NOT_FOUND = 6,
    NVML_RET_INSUFFICIENT_SIZE = 7,
    NVML_RET_INSUFFICIENT_POWER = 8,
    NVML_RET_DRIVER_NOT_LOADED = 9,
    NVML_RET_TIMEOUT = 10,
    NVML_RET_IRQ_ISSUE = 11,
    NVML_RET_LIBRARY_NOT_FOUND = 12,
    NVML_RET_FUNCTION_NOT_FOUND = 13,
    NVML_RET_CORRUPTED_INFOROM = 14,
    NVML_RET_GPU_IS_LOST = 15,
    NVML_RET_RESET_REQUIRED = 16,
    NVML_RET_OPERATING_SYSTEM = 17,
    NVML_RET_LIB_RM_VERSION_MISMATCH = 18,
    NVML_RET_IN_USE = 19,
    NVML_RET_MEMORY = 20,
    NVML_RET_NO_DATA = 21,
    NVML_RET_VGPU_ECC_NOT_SUPPORTED = 22,
    NVML_RET_INSUFFICIENT_RESOURCES = 23,
    NVML_RET_FREQ_NOT_SUPPORTED = 24,
    NVML_RET_ARGUMENT_VERSION_MISMATCH = 25,
    NVML_RET_DEPRECATED = 26,
    NVML_RET_NOT_READY = 27,
    NVML_RET_GPU_NOT_FOUND = 28,
    NVML_RET_INVALID_STATE = 29,
    NVML_RET_RESET_TYPE_NOT_SUPPORTED = 30,
    NVML_RET_UNKNOWN = 999,
};

/* The wrapped functions, for error accounting (nvml_error_count(), nvml_fn_name()). */
enum nvml_fn {
    NVML_FN_INIT,
    NVML_FN_SYSTEM_GET_DRIVER_VERSION,
    NVML_FN_SYSTEM_GET_NVML_VERSION,
    NVML_FN_SYSTEM_GET_CUDA_DRIVER_VERSION,
    NVML_FN_DEVICE_GET_COUNT,
    NVML_FN_DEVICE_GET_HANDLE_BY_INDEX,
    NVML_FN_DEVICE_GET_UUID,
    NVML_FN_DEVICE_GET_NAME,
    NVML_FN_DEVICE_GET_PCI_INFO,
    NVML_FN_DEVICE_GET_MINOR_NUMBER,
    NVML_FN_DEVICE_GET_UTILIZATION_RATES,
    NVML_FN_DEVICE_GET_MEMORY_INFO,
    NVML_FN_DEVICE_GET_TEMPERATURE,
    NVML_FN_DEVICE_GET_POWER_USAGE,
    NVML_FN_DEVICE_GET_ENFORCED_POWER_LIMIT,
    NVML_FN_DEVICE_GET_TOTAL_ENERGY_CONSUMPTION,
    NVML_FN_DEVICE_GET_CLOCK_INFO,
    NVML_FN_DEVICE_GET_MAX_CLOCK_INFO,
    NVML_FN_DEVICE_GET_CLOCKS_EVENT_REASONS,
    NVML_FN_DEVICE_GET_PERFORMANCE_STATE,
    NVML_FN_DEVICE_GET_FAN_SPEED,
    NVML_FN_DEVICE_GET_ECC_MODE,
    NVML_FN_DEVICE_GET_TOTAL_ECC_ERRORS,
    NVML_FN_DEVICE_GET_RETIRED_PAGES,
    NVML_FN_DEVICE_GET_RETIRED_PAGES_PENDING_STATUS,
    NVML_FN_DEVICE_GET_REMAPPED_ROWS,
    NVML_FN_DEVICE_GET_PCIE_REPLAY_COUNTER,
    NVML_FN_DEVICE_GET_CURR_PCIE_LINK_GENERATION,
    NVML_FN_DEVICE_GET_CURR_PCIE_LINK_WIDTH,
    NVML_FN_DEVICE_GET_NVLINK_STATE,
    NVML_FN_DEVICE_GET_FIELD_VALUES,
    NVML_FN_DEVICE_GET_SUPPORTED_EVENT_TYPES,
    NVML_FN_EVENT_SET_CREATE,
    NVML_FN_DEVICE_REGISTER_EVENTS,
    NVML_FN_EVENT_SET_WAIT,
    NVML_FN_EVENT_SET_FREE,
    _NVML_FN_MAX,
};

/* nvmlClockType_t */
enum nvml_clock {
    NVML_CLOCK_GRAPHICS = 0,
    NVML_CLOCK_SM = 1,
    NVML_CLOCK_MEM = 2,
    NVML_CLOCK_VIDEO = 3,
    _NVML_CLOCK_MAX,
};

/* nvmlMemoryErrorType_t x nvmlEccCounterType_t */
enum nvml_ecc_error {
    NVML_ECC_CORRECTED = 0,
    NVML_ECC_UNCORRECTED = 1,
};
enum nvml_ecc_counter {
    NVML_ECC_VOLATILE = 0,  /* since the driver loaded */
    NVML_ECC_AGGREGATE = 1, /* lifetime */
};

/* nvmlPageRetirementCause_t */
enum nvml_retire_cause {
    NVML_RETIRE_MULTIPLE_SBE = 0,
    NVML_RETIRE_DBE = 1,
};

/* Event types (nvmlEventType*) and clocks event (throttle) reason bits. */
#define NVML_EVENT_XID_CRITICAL_ERROR 0x0008ull

#define NVML_CLOCKS_EVENT_GPU_IDLE            0x0001ull
#define NVML_CLOCKS_EVENT_APPLICATIONS_CLOCKS 0x0002ull
#define NVML_CLOCKS_EVENT_SW_POWER_CAP        0x0004ull
#define NVML_CLOCKS_EVENT_HW_SLOWDOWN         0x0008ull
#define NVML_CLOCKS_EVENT_SYNC_BOOST          0x0010ull
#define NVML_CLOCKS_EVENT_SW_THERMAL_SLOWDOWN 0x0020ull
#define NVML_CLOCKS_EVENT_HW_THERMAL_SLOWDOWN 0x0040ull
#define NVML_CLOCKS_EVENT_HW_POWER_BRAKE      0x0080ull
#define NVML_CLOCKS_EVENT_DISPLAY_CLOCK       0x0100ull

#define NVML_NVLINK_MAX_LINKS    18 /* links probed; NVML_NVLINK_MAX_LINKS is 18 up to 12.x */
#define NVML_UUID_SIZE           96 /* NVML_DEVICE_UUID_V2_BUFFER_SIZE */
#define NVML_NAME_SIZE           96 /* NVML_DEVICE_NAME_V2_BUFFER_SIZE */
#define NVML_PCI_BUS_ID_SIZE     32 /* NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE */
#define NVML_VERSION_STRING_SIZE 80 /* NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE */

/* nvmlFieldValue IDs read with nvml_device_get_field_u64(). */
#define NVML_FI_DEV_MEMORY_TEMP             82
#define NVML_FI_DEV_GET_GPU_RECOVERY_ACTION 230

struct nvml;
struct nvml_device;    /* nvmlDevice_t: opaque, never dereferenced */
struct nvml_event_set; /* nvmlEventSet_t: opaque */

struct nvml_pci {
    uint32_t domain, bus, device, pci_device_id, pci_subsystem_id;
    char bus_id[NVML_PCI_BUS_ID_SIZE]; /* "00000000:00:06.0" */
};

struct nvml_memory {
    uint64_t total, used, free;
    uint64_t reserved; /* only from nvmlDeviceGetMemoryInfo_v2 */
    bool has_reserved;
};

struct nvml_remapped_rows {
    unsigned correctable, uncorrectable;
    bool pending, failure;
};

struct nvml_event {
    struct nvml_device *device;
    uint64_t type; /* NVML_EVENT_* */
    uint64_t data; /* XID number for NVML_EVENT_XID_CRITICAL_ERROR (999 = unknown XID) */
};

/* Loads library (NULL = "libnvidia-ml.so.1", or a path such as the tests' fake), resolves its
 * symbols and calls nvmlInit_v2 (or nvmlInit).  Returns 0; -ENOENT when the library cannot be
 * loaded (no driver installed), -ENOSYS when it lacks nvmlInit, -EIO when init fails (the NVML
 * status is in *reterr_status, may be NULL).  *reterr (may be NULL) gets a message naming the
 * library and dlerror() or nvmlErrorString().  *ret is written only on success. */
int nvml_open(const char *library, struct nvml **ret, int *reterr_status,
              struct err *reterr) WARN_UNUSED_RESULT;
/* nvmlShutdown() and dlclose().  NULL-safe; returns NULL.  No other thread may use n. */
struct nvml *nvml_close(struct nvml *n);

/* nvmlErrorString() when loaded, else a built-in name; never NULL; static storage. */
const char *nvml_ret_string(const struct nvml *n, enum nvml_ret st);
/* "gpu_is_lost", "not_supported", ... ("unknown" for codes we do not know); static. */
const char *nvml_ret_name(enum nvml_ret st);
/* The NVML symbol a wrapper calls, e.g. "nvmlDeviceGetCount_v2" (the one resolved, or the
 * preferred one when missing); static or owned by n. */
const char *nvml_fn_name(const struct nvml *n, enum nvml_fn fn);
/* How often fn returned st (st other than SUCCESS and NOT_SUPPORTED). */
uint64_t nvml_error_count(const struct nvml *n, enum nvml_fn fn, enum nvml_ret st);
/* Calls cb for every (fn, status) counter that is not zero, in a stable order. */
void nvml_error_foreach(const struct nvml *n,
                        void (*cb)(enum nvml_fn fn, enum nvml_ret st, uint64_t count,
                                   void *userdata),
                        void *userdata);
/* true when the library exports fn's symbol (any version). */
bool nvml_has(const struct nvml *n, enum nvml_fn fn);

/* ===== System ===== */

enum nvml_ret nvml_system_driver_version(struct nvml *n, char *buf, unsigned size);
enum nvml_ret nvml_system_nvml_version(struct nvml *n, char *buf, unsigned size);
/* e.g. 13000 for CUDA 13.0 */
enum nvml_ret nvml_system_cuda_driver_version(struct nvml *n, int *ret);

/* ===== Devices ===== */

enum nvml_ret nvml_device_count(struct nvml *n, unsigned *ret);
enum nvml_ret nvml_device_by_index(struct nvml *n, unsigned index, struct nvml_device **ret);
enum nvml_ret nvml_device_uuid(struct nvml *n, struct nvml_device *d, char *buf, unsigned size);
enum nvml_ret nvml_device_name(struct nvml *n, struct nvml_device *d, char *buf, unsigned size);
enum nvml_ret nvml_device_pci(struct nvml *n, struct nvml_device *d, struct nvml_pci *ret);
enum nvml_ret nvml_device_minor_number(struct nvml *n, struct nvml_device *d, unsigned *ret);
/* Percent over the driver's last sample period. */
enum nvml_ret nvml_device_utilization(struct nvml *n, struct nvml_device *d, unsigned *ret_gpu,
                                      unsigned *ret_memory);
enum nvml_ret nvml_device_memory(struct nvml *n, struct nvml_device *d, struct nvml_memory *ret);
/* GPU core temperature, degrees C (nvmlDeviceGetTemperatureV, else nvmlDeviceGetTemperature). */
enum nvml_ret nvml_device_temperature(struct nvml *n, struct nvml_device *d, int *ret);
/* Milliwatts. */
enum nvml_ret nvml_device_power_usage(struct nvml *n, struct nvml_device *d, unsigned *ret);
enum nvml_ret nvml_device_power_limit(struct nvml *n, struct nvml_device *d, unsigned *ret);
/* Millijoules since the driver loaded. */
enum nvml_ret nvml_device_energy(struct nvml *n, struct nvml_device *d, uint64_t *ret);
/* MHz. */
enum nvml_ret nvml_device_clock(struct nvml *n, struct nvml_device *d, enum nvml_clock type,
                                unsigned *ret);
enum nvml_ret nvml_device_max_clock(struct nvml *n, struct nvml_device *d, enum nvml_clock type,
                                    unsigned *ret);
/* NVML_CLOCKS_EVENT_* bits (CurrentClocksEventReasons, else CurrentClocksThrottleReasons). */
enum nvml_ret nvml_device_clocks_event_reasons(struct nvml *n, struct nvml_device *d,
                                               uint64_t *ret);
/* 0..15 (P0..P15); 32 = unknown. */
enum nvml_ret nvml_device_pstate(struct nvml *n, struct nvml_device *d, unsigned *ret);
/* Percent of the maximum fan speed. */
enum nvml_ret nvml_device_fan_speed(struct nvml *n, struct nvml_device *d, unsigned *ret);
enum nvml_ret nvml_device_ecc_mode(struct nvml *n, struct nvml_device *d, bool *ret_current);
enum nvml_ret nvml_device_ecc_errors(struct nvml *n, struct nvml_device *d,
                                     enum nvml_ecc_error type, enum nvml_ecc_counter counter,
                                     uint64_t *ret);
/* Number of retired pages for cause (no addresses are read). */
enum nvml_ret nvml_device_retired_pages(struct nvml *n, struct nvml_device *d,
                                        enum nvml_retire_cause cause, unsigned *ret);
enum nvml_ret nvml_device_retired_pages_pending(struct nvml *n, struct nvml_device *d, bool *ret);
enum nvml_ret nvml_device_remapped_rows(struct nvml *n, struct nvml_device *d,
                                        struct nvml_remapped_rows *ret);
enum nvml_ret nvml_device_pcie_replay_counter(struct nvml *n, struct nvml_device *d, unsigned *ret);
enum nvml_ret nvml_device_pcie_link_generation(struct nvml *n, struct nvml_device *d,
                                               unsigned *ret);
enum nvml_ret nvml_device_pcie_link_width(struct nvml *n, struct nvml_device *d, unsigned *ret);
/* Whether NVLink link is active; NOT_SUPPORTED / INVALID_ARGUMENT past the last link. */
enum nvml_ret nvml_device_nvlink_state(struct nvml *n, struct nvml_device *d, unsigned link,
                                       bool *ret);
/* One nvmlDeviceGetFieldValues() field read as an unsigned integer (per-field status). */
enum nvml_ret nvml_device_field_u64(struct nvml *n, struct nvml_device *d, unsigned field_id,
                                    uint64_t *ret);

/* ===== Events ===== */

enum nvml_ret nvml_device_supported_events(struct nvml *n, struct nvml_device *d, uint64_t *ret);
enum nvml_ret nvml_event_set_create(struct nvml *n, struct nvml_event_set **ret);
enum nvml_ret nvml_device_register_events(struct nvml *n, struct nvml_device *d, uint64_t types,
                                          struct nvml_event_set *set);
/* Waits up to timeout_ms for one event.  TIMEOUT when none came; GPU_IS_LOST when a GPU of
 * the set fell off the bus. */
enum nvml_ret nvml_event_set_wait(struct nvml *n, struct nvml_event_set *set,
                                  struct nvml_event *ret, unsigned timeout_ms);
/* NULL-safe. */
void nvml_event_set_free(struct nvml *n, struct nvml_event_set *set);
