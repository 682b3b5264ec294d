/* SPDX-License-Identifier: MIT */
/* fake_nvml.h - the NVML ABI as the fake libnvidia-ml exports it (tests only; never installed).
 * Declared independently of src/nvml so a layout mistake there shows up as a test failure. */
#pragma once

struct fake_nvml_utilization {
    unsigned int gpu, memory;
};
struct fake_nvml_memory {
    unsigned long long total, free, used;
};
struct fake_nvml_memory_v2 {
    unsigned int version;
    unsigned long long total, reserved, free, used;
};
struct fake_nvml_temperature {
    unsigned int version;
    int sensor_type;
    int temperature;
};
struct fake_nvml_pci {
    char bus_id_legacy[16];
    unsigned int domain, bus, device, pci_device_id, pci_subsystem_id;
    char bus_id[32];
};
struct fake_nvml_event_data {
    void *device;
    unsigned long long event_type, event_data;
    unsigned int gpu_instance_id, compute_instance_id;
};
struct fake_nvml_field_value {
    unsigned int field_id, scope_id;
    long long timestamp, latency_usec;
    int value_type;
    int nvml_return;
    union {
        double d;
        unsigned int ui;
        unsigned long long ull;
    } value;
};

int nvmlInit_v2(void);
int nvmlInit(void);
int nvmlShutdown(void);
const char *nvmlErrorString(int r);
int nvmlSystemGetDriverVersion(char *v, unsigned int n);
int nvmlSystemGetNVMLVersion(char *v, unsigned int n);
int nvmlSystemGetCudaDriverVersion_v2(int *v);
int nvmlSystemGetCudaDriverVersion(int *v);
int nvmlDeviceGetCount_v2(unsigned int *n);
int nvmlDeviceGetCount(unsigned int *n);
int nvmlDeviceGetHandleByIndex_v2(unsigned int i, void **d);
int nvmlDeviceGetHandleByIndex(unsigned int i, void **d);
int nvmlDeviceGetUUID(void *d, char *v, unsigned int n);
int nvmlDeviceGetName(void *d, char *v, unsigned int n);
int nvmlDeviceGetPciInfo_v3(void *d, struct fake_nvml_pci *p);
int nvmlDeviceGetMinorNumber(void *d, unsigned int *v);
int nvmlDeviceGetUtilizationRates(void *d, struct fake_nvml_utilization *u);
int nvmlDeviceGetMemoryInfo_v2(void *d, struct fake_nvml_memory_v2 *m);
int nvmlDeviceGetMemoryInfo(void *d, struct fake_nvml_memory *m);
int nvmlDeviceGetTemperatureV(void *d, struct fake_nvml_temperature *t);
int nvmlDeviceGetTemperature(void *d, int sensor, unsigned int *t);
int nvmlDeviceGetPowerUsage(void *d, unsigned int *v);
int nvmlDeviceGetEnforcedPowerLimit(void *d, unsigned int *v);
int nvmlDeviceGetTotalEnergyConsumption(void *d, unsigned long long *v);
int nvmlDeviceGetClockInfo(void *d, int type, unsigned int *v);
int nvmlDeviceGetMaxClockInfo(void *d, int type, unsigned int *v);
int nvmlDeviceGetCurrentClocksEventReasons(void *d, unsigned long long *v);
int nvmlDeviceGetPerformanceState(void *d, int *v);
int nvmlDeviceGetFanSpeed(void *d, unsigned int *v);
int nvmlDeviceGetEccMode(void *d, int *cur, int *pending);
int nvmlDeviceGetTotalEccErrors(void *d, int type, int counter, unsigned long long *v);
int nvmlDeviceGetRetiredPages(void *d, int cause, unsigned int *count, unsigned long long *addr);
int nvmlDeviceGetRetiredPagesPendingStatus(void *d, int *v);
int nvmlDeviceGetRemappedRows(void *d, unsigned int *corr, unsigned int *unc, unsigned int *pending,
                              unsigned int *failure);
int nvmlDeviceGetPcieReplayCounter(void *d, unsigned int *v);
int nvmlDeviceGetCurrPcieLinkGeneration(void *d, unsigned int *v);
int nvmlDeviceGetCurrPcieLinkWidth(void *d, unsigned int *v);
int nvmlDeviceGetNvLinkState(void *d, unsigned int link, int *v);
int nvmlDeviceGetFieldValues(void *d, int n, struct fake_nvml_field_value *v);
int nvmlDeviceGetSupportedEventTypes(void *d, unsigned long long *v);
int nvmlEventSetCreate(void **set);
int nvmlDeviceRegisterEvents(void *d, unsigned long long types, void *set);
int nvmlEventSetWait_v2(void *set, struct fake_nvml_event_data *e, unsigned int timeout_ms);
int nvmlEventSetWait(void *set, struct fake_nvml_event_data *e, unsigned int timeout_ms);
int nvmlEventSetFree(void *set);
