/* SPDX-License-Identifier: MIT */
/* The dlopen NVML binding against the fake libnvidia-ml (tests/fake_nvml): loading, init
 * failures, versioned symbols first, values with the real H200's numbers, NOT_SUPPORTED,
 * GPU-lost accounting and XID events. */
#include <stdlib.h>

#include "core/err.h"
#include "core/str.h"
#include "core/time.h"
#include "fake_nvml/fake_state.h"
#include "nvml/nvml.h"
#include "t.h"

static struct nvml *open_fake(void)
{
    struct err e = ERR_INIT;
    struct nvml *n = NULL;
    int st = 0;

    ASSERT_OK(nvml_open(FAKE_NVML_LIB, &n, &st, &e));
    ASSERT_TRUE(n != NULL);
    return n;
}

static void test_missing_library(void)
{
    struct err e = ERR_INIT;
    struct nvml *n = NULL;

    ASSERT_ERRNO(nvml_open("/nonexistent/libnvidia-ml.so.1", &n, NULL, &e), -ENOENT);
    ASSERT_TRUE(n == NULL);
    ASSERT_CONTAINS(e.msg, "/nonexistent/libnvidia-ml.so.1");
}

static void test_init_failure(void)
{
    struct fake_state fs;
    struct err e = ERR_INIT;
    struct nvml *n = NULL;
    int st = 0;

    /* No state file at all: the fake behaves like a machine without the kernel driver. */
    (void)unsetenv("FAKE_NVML_STATE");
    ASSERT_ERRNO(nvml_open(FAKE_NVML_LIB, &n, &st, &e), -EIO);
    ASSERT_EQ(st, NVML_RET_DRIVER_NOT_LOADED);
    ASSERT_CONTAINS(e.msg, "nvmlInit_v2");
    ASSERT_CONTAINS(e.msg, "Driver Not Loaded");

    ASSERT_OK(fake_state_init(&fs, "init_error 18\n"));
    ASSERT_ERRNO(nvml_open(FAKE_NVML_LIB, &n, &st, &e), -EIO);
    ASSERT_EQ(st, NVML_RET_LIB_RM_VERSION_MISMATCH);
    fake_state_cleanup(&fs);
}

static void test_values(void)
{
    struct fake_state fs;
    struct nvml_device *d0 = NULL, *d1 = NULL;
    struct nvml_memory mem;
    struct nvml_pci pci;
    struct nvml_remapped_rows rows;
    char s[NVML_UUID_SIZE];
    unsigned u = 0, g = 0, m = 0;
    uint64_t v = 0;
    bool b = false;
    int t = 0;
    struct nvml *n;

    ASSERT_OK(fake_state_init(&fs, NULL));
    n = open_fake();
    ASSERT_EQ(nvml_system_driver_version(n, s, sizeof s), NVML_RET_SUCCESS);
    ASSERT_STREQ(s, "580.159.04");
    ASSERT_EQ(nvml_system_cuda_driver_version(n, &t), NVML_RET_SUCCESS);
    ASSERT_EQ(t, 13000);
    ASSERT_EQ(nvml_device_count(n, &u), NVML_RET_SUCCESS);
    ASSERT_EQ(u, 2);
    ASSERT_EQ(nvml_device_by_index(n, 0, &d0), NVML_RET_SUCCESS);
    ASSERT_EQ(nvml_device_by_index(n, 1, &d1), NVML_RET_SUCCESS);
    ASSERT_TRUE(d0 != d1);
    ASSERT_EQ(nvml_device_uuid(n, d0, s, sizeof s), NVML_RET_SUCCESS);
    ASSERT_STREQ(s, "GPU-74c4c37d-bdf1-9a59-0eed-86aaaccc727d");
    ASSERT_EQ(nvml_device_name(n, d0, s, sizeof s), NVML_RET_SUCCESS);
    ASSERT_STREQ(s, "NVIDIA H200");
    ASSERT_EQ(nvml_device_pci(n, d1, &pci), NVML_RET_SUCCESS);
    ASSERT_STREQ(pci.bus_id, "00000000:00:07.0");
    ASSERT_EQ(pci.pci_device_id, 0x233510DE);
    ASSERT_EQ(nvml_device_utilization(n, d0, &g, &m), NVML_RET_SUCCESS);
    ASSERT_EQ(g, 0);
    /* _v2 is used: reserved is separate from used. */
    ASSERT_EQ(nvml_device_memory(n, d0, &mem), NVML_RET_SUCCESS);
    ASSERT_TRUE(mem.has_reserved);
    ASSERT_EQ(mem.total, 150754820096ull);
    ASSERT_EQ(mem.reserved, 644939776ull);
    ASSERT_EQ(mem.used, 0);
    ASSERT_STREQ(nvml_fn_name(n, NVML_FN_DEVICE_GET_MEMORY_INFO), "nvmlDeviceGetMemoryInfo_v2");
    ASSERT_EQ(nvml_device_temperature(n, d0, &t), NVML_RET_SUCCESS);
    ASSERT_EQ(t, 39);
    ASSERT_EQ(nvml_device_power_usage(n, d0, &u), NVML_RET_SUCCESS);
    ASSERT_EQ(u, 102600);
    ASSERT_EQ(nvml_device_power_limit(n, d0, &u), NVML_RET_SUCCESS);
    ASSERT_EQ(u, 700000);
    ASSERT_EQ(nvml_device_energy(n, d0, &v), NVML_RET_SUCCESS);
    ASSERT_EQ(v, 8123456789ull);
    ASSERT_EQ(nvml_device_clock(n, d0, NVML_CLOCK_MEM, &u), NVML_RET_SUCCESS);
    ASSERT_EQ(u, 3201);
    ASSERT_EQ(nvml_device_max_clock(n, d0, NVML_CLOCK_VIDEO, &u), NVML_RET_SUCCESS);
    ASSERT_EQ(u, 1545);
    ASSERT_EQ(nvml_device_clocks_event_reasons(n, d0, &v), NVML_RET_SUCCESS);
    ASSERT_EQ(v, NVML_CLOCKS_EVENT_GPU_IDLE);
    ASSERT_EQ(nvml_device_pstate(n, d0, &u), NVML_RET_SUCCESS);
    ASSERT_EQ(u, 0);
    ASSERT_EQ(nvml_device_ecc_mode(n, d0, &b), NVML_RET_SUCCESS);
    ASSERT_TRUE(b);
    ASSERT_EQ(nvml_device_ecc_errors(n, d0, NVML_ECC_UNCORRECTED, NVML_ECC_VOLATILE, &v),
              NVML_RET_SUCCESS);
    ASSERT_EQ(v, 0);
    ASSERT_EQ(nvml_device_remapped_rows(n, d0, &rows), NVML_RET_SUCCESS);
    ASSERT_FALSE(rows.failure);
    ASSERT_EQ(nvml_device_pcie_link_generation(n, d0, &u), NVML_RET_SUCCESS);
    ASSERT_EQ(u, 5);
    ASSERT_EQ(nvml_device_field_u64(n, d0, NVML_FI_DEV_MEMORY_TEMP, &v), NVML_RET_SUCCESS);
    ASSERT_EQ(v, 41);
    ASSERT_EQ(nvml_device_field_u64(n, d0, NVML_FI_DEV_GET_GPU_RECOVERY_ACTION, &v),
              NVML_RET_SUCCESS);
    ASSERT_EQ(v, 0);
    /* N/A on the H200: fan, retired pages, NVLink.  Not counted as errors. */
    ASSERT_EQ(nvml_device_fan_speed(n, d0, &u), NVML_RET_NOT_SUPPORTED);
    ASSERT_EQ(nvml_device_retired_pages(n, d0, NVML_RETIRE_DBE, &u), NVML_RET_NOT_SUPPORTED);
    ASSERT_EQ(nvml_device_nvlink_state(n, d0, 0, &b), NVML_RET_NOT_SUPPORTED);
    ASSERT_EQ(nvml_error_count(n, NVML_FN_DEVICE_GET_FAN_SPEED, NVML_RET_NOT_SUPPORTED), 0);
    nvml_close(n);
    fake_state_cleanup(&fs);
}

static void test_versioned_first(void)
{
    struct fake_state fs;
    struct nvml_device *d = NULL;
    struct nvml_memory mem;
    unsigned u = 0;
    int t = 0;
    struct nvml *n;

    /* The fake fails every unversioned entry point: the binding must not touch them. */
    ASSERT_OK(fake_state_init(&fs, "reject_v1 1\n"));
    n = open_fake();
    ASSERT_STREQ(nvml_fn_name(n, NVML_FN_INIT), "nvmlInit_v2");
    ASSERT_STREQ(nvml_fn_name(n, NVML_FN_DEVICE_GET_COUNT), "nvmlDeviceGetCount_v2");
    ASSERT_STREQ(nvml_fn_name(n, NVML_FN_DEVICE_GET_HANDLE_BY_INDEX),
                 "nvmlDeviceGetHandleByIndex_v2");
    ASSERT_STREQ(nvml_fn_name(n, NVML_FN_EVENT_SET_WAIT), "nvmlEventSetWait_v2");
    ASSERT_EQ(nvml_device_count(n, &u), NVML_RET_SUCCESS);
    ASSERT_EQ(nvml_device_by_index(n, 0, &d), NVML_RET_SUCCESS);
    ASSERT_EQ(nvml_device_memory(n, d, &mem), NVML_RET_SUCCESS);
    ASSERT_EQ(nvml_device_temperature(n, d, &t), NVML_RET_SUCCESS);
    ASSERT_EQ(nvml_system_cuda_driver_version(n, &t), NVML_RET_SUCCESS);
    nvml_close(n);
    fake_state_cleanup(&fs);
}

static void test_lost_and_errors(void)
{
    struct fake_state fs;
    struct nvml_device *d0 = NULL, *d1 = NULL;
    unsigned u = 0;
    struct nvml *n;

    ASSERT_OK(fake_state_init(&fs, NULL));
    n = open_fake();
    ASSERT_EQ(nvml_device_by_index(n, 0, &d0), NVML_RET_SUCCESS);
    ASSERT_EQ(nvml_device_by_index(n, 1, &d1), NVML_RET_SUCCESS);
    ASSERT_OK(fake_state_set(&fs, "gpu0.lost 1\ngpu1.error.nvmlDeviceGetPowerUsage 999\n"));
    ASSERT_EQ(nvml_device_power_usage(n, d0, &u), NVML_RET_GPU_IS_LOST);
    ASSERT_EQ(nvml_device_power_usage(n, d0, &u), NVML_RET_GPU_IS_LOST);
    ASSERT_EQ(nvml_device_power_usage(n, d1, &u), NVML_RET_UNKNOWN);
    ASSERT_EQ(nvml_device_pcie_link_width(n, d1, &u), NVML_RET_SUCCESS);
    ASSERT_EQ(nvml_device_by_index(n, 0, &d0), NVML_RET_GPU_IS_LOST);
    ASSERT_EQ(nvml_error_count(n, NVML_FN_DEVICE_GET_POWER_USAGE, NVML_RET_GPU_IS_LOST), 2);
    ASSERT_EQ(nvml_error_count(n, NVML_FN_DEVICE_GET_POWER_USAGE, NVML_RET_UNKNOWN), 1);
    ASSERT_EQ(nvml_error_count(n, NVML_FN_DEVICE_GET_HANDLE_BY_INDEX, NVML_RET_GPU_IS_LOST), 1);
    ASSERT_STREQ(nvml_ret_name(NVML_RET_GPU_IS_LOST), "gpu_is_lost");
    ASSERT_STREQ(nvml_ret_string(n, NVML_RET_GPU_IS_LOST), "GPU is lost");
    nvml_close(n);
    fake_state_cleanup(&fs);
}

static void test_events(void)
{
    struct fake_state fs;
    struct nvml_device *d0 = NULL, *d1 = NULL;
    struct nvml_event_set *set = NULL;
    struct nvml_event ev;
    uint64_t mask = 0, t0;
    struct nvml *n;

    /* An XID from before the set existed is never delivered. */
    ASSERT_OK(fake_state_init(&fs, "xid 1 0 48\n"));
    n = open_fake();
    ASSERT_EQ(nvml_device_by_index(n, 0, &d0), NVML_RET_SUCCESS);
    ASSERT_EQ(nvml_device_by_index(n, 1, &d1), NVML_RET_SUCCESS);
    ASSERT_EQ(nvml_device_supported_events(n, d0, &mask), NVML_RET_SUCCESS);
    ASSERT_TRUE(mask & NVML_EVENT_XID_CRITICAL_ERROR);
    ASSERT_EQ(nvml_event_set_create(n, &set), NVML_RET_SUCCESS);
    ASSERT_EQ(nvml_device_register_events(n, d0, NVML_EVENT_XID_CRITICAL_ERROR, set),
              NVML_RET_SUCCESS);
    ASSERT_EQ(nvml_device_register_events(n, d1, NVML_EVENT_XID_CRITICAL_ERROR, set),
              NVML_RET_SUCCESS);
    t0 = now_usec();
    ASSERT_EQ(nvml_event_set_wait(n, set, &ev, 100), NVML_RET_TIMEOUT);
    ASSERT_GE(now_usec() - t0, 90 * USEC_PER_MSEC);
    ASSERT_EQ(nvml_error_count(n, NVML_FN_EVENT_SET_WAIT, NVML_RET_TIMEOUT), 0);

    ASSERT_OK(fake_state_set(&fs, "xid 1 0 48\nxid 2 1 13\nxid 3 0 79\n"));
    ASSERT_EQ(nvml_event_set_wait(n, set, &ev, 1000), NVML_RET_SUCCESS);
    ASSERT_TRUE(ev.device == d1);
    ASSERT_EQ(ev.type, NVML_EVENT_XID_CRITICAL_ERROR);
    ASSERT_EQ(ev.data, 13);
    ASSERT_EQ(nvml_event_set_wait(n, set, &ev, 1000), NVML_RET_SUCCESS);
    ASSERT_TRUE(ev.device == d0);
    ASSERT_EQ(ev.data, 79);
    ASSERT_EQ(nvml_event_set_wait(n, set, &ev, 50), NVML_RET_TIMEOUT);

    ASSERT_OK(fake_state_set(&fs, "gpu1.lost 1\n"));
    ASSERT_EQ(nvml_event_set_wait(n, set, &ev, 1000), NVML_RET_GPU_IS_LOST);
    nvml_event_set_free(n, set);
    nvml_close(n);
    fake_state_cleanup(&fs);
}

T_MAIN(T_CASE(test_missing_library), T_CASE(test_init_failure), T_CASE(test_values),
       T_CASE(test_versioned_first), T_CASE(test_lost_and_errors), T_CASE(test_events))
