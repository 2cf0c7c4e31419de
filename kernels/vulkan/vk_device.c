/* vk_device.c: the loader, devices, memory chunks, pipelines and the command stream of the
 * vulkan backend (see vk_device.h). */
#define VK_NO_PROTOTYPES
#include "vk_device.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vulkan/vulkan.h>

#include "vk_cmdlist.h"
#include "vk_spirv.h"

/* Every entry point used, loaded through vkGetInstanceProcAddr. */
#define VK_FUNCS(X)                                                                            \
    X(vkDestroyInstance) X(vkEnumeratePhysicalDevices) X(vkGetPhysicalDeviceProperties)         \
    X(vkGetPhysicalDeviceProperties2) X(vkGetPhysicalDeviceMemoryProperties)                   \
    X(vkGetPhysicalDeviceQueueFamilyProperties) X(vkCreateDevice) X(vkDestroyDevice)           \
    X(vkGetDeviceQueue) X(vkCreateBuffer) X(vkDestroyBuffer) X(vkGetBufferMemoryRequirements)  \
    X(vkAllocateMemory) X(vkFreeMemory) X(vkBindBufferMemory) X(vkMapMemory)                   \
    X(vkCreateShaderModule) X(vkDestroyShaderModule) X(vkCreateDescriptorSetLayout)            \
    X(vkDestroyDescriptorSetLayout) X(vkCreatePipelineLayout) X(vkDestroyPipelineLayout)       \
    X(vkCreateComputePipelines) X(vkDestroyPipeline) X(vkCreateDescriptorPool)                 \
    X(vkDestroyDescriptorPool) X(vkAllocateDescriptorSets) X(vkUpdateDescriptorSets)           \
    X(vkCreateCommandPool) X(vkDestroyCommandPool) X(vkAllocateCommandBuffers)                 \
    X(vkBeginCommandBuffer) X(vkEndCommandBuffer) X(vkResetCommandBuffer) X(vkCmdBindPipeline) \
    X(vkCmdBindDescriptorSets) X(vkCmdPushConstants) X(vkCmdDispatch) X(vkCmdPipelineBarrier)  \
    X(vkCmdCopyBuffer) X(vkCreateFence) X(vkDestroyFence) X(vkWaitForFences) X(vkResetFences)  \
    X(vkQueueSubmit) X(vkDeviceWaitIdle) X(vkCreateDebugUtilsMessengerEXT)                     \
    X(vkDestroyDebugUtilsMessengerEXT)

typedef struct vk_fns {
    void *lib;
    PFN_vkGetInstanceProcAddr gipa;
    PFN_vkCreateInstance vkCreateInstance;
    PFN_vkEnumerateInstanceLayerProperties vkEnumerateInstanceLayerProperties;
#define FN_(f) PFN_##f f;
    VK_FUNCS(FN_)
#undef FN_
} vk_fns;

#define CHUNK_BYTES ((size_t)256 << 20) /* one allocation serves many buffers */
#define ALIGN 256                       /* every span; >= minStorageBufferOffsetAlignment */
#define STAGING_BYTES ((size_t)32 << 20)
#define MAX_CHUNKS 1024
#define MAX_PIPES 64
#define WAIT_NS 600000000000ull          /* a submission taking over 10 minutes is a hang */

typedef struct range {
    size_t off, size;
} range;

typedef struct chunk {
    VkBuffer buf;
    VkDeviceMemory mem;
    size_t size;
    range *free; /* sorted, coalesced */
    int n_free, cap_free;
} chunk;

typedef struct pipe {
    char name[32];
    VkPipeline p;
} pipe;

typedef struct dset {
    VkBuffer b[MLC_VK_BINDINGS];
    VkDescriptorSet set;
} dset;

struct mlc_vk {
    vk_fns f;
    VkInstance inst;
    VkDebugUtilsMessengerEXT messenger;
    VkPhysicalDevice pd;
    VkDevice dev;
    VkQueue queue;
    uint32_t qfam;
    VkPhysicalDeviceMemoryProperties memp;
    VkDeviceSize max_alloc, max_range;
    mlc_vk_info info;

    chunk chunks[MAX_CHUNKS];
    int n_chunks;
    size_t in_use;

    /* host-visible: staging (bump-allocated between flushes), status word */
    VkBuffer stage_buf, status_buf;
    VkDeviceMemory stage_mem, status_mem;
    uint8_t *stage;
    uint32_t *status;
    size_t stage_used;

    VkDescriptorSetLayout dsl;
    VkPipelineLayout layout;
    VkDescriptorPool dpool;
    dset *sets;
    int n_sets, cap_sets;
    pipe pipes[MAX_PIPES];
    int n_pipes;

    VkCommandPool cpool;
    VkFence fence;
    mlc_vk_cmdlist pending; /* what the next submission runs */
    mlc_vk_cmdcache recorded;
    bool pending_oom;       /* a command could not be kept: the next flush fails */
    mlc_err verr; /* the first validation-layer finding */
};

/* ---------------------------------------------------------------- loader */

static bool load_lib(vk_fns *f, char *why, size_t cap)
{
    memset(f, 0, sizeof *f);
    const char *path = getenv("MLC_VK_LOADER"); /* another loader (tests: a missing one) */
    f->lib = dlopen(path && *path ? path : "libvulkan.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!f->lib) {
        snprintf(why, cap, "no Vulkan loader (%s; install libvulkan1)", dlerror());
        return false;
    }
    /* dlsym's object pointer converted to a function pointer, as POSIX allows. */
    void *sym = dlsym(f->lib, "vkGetInstanceProcAddr");
    memcpy(&f->gipa, &sym, sizeof f->gipa);
    if (!f->gipa) {
        snprintf(why, cap, "libvulkan.so.1 has no vkGetInstanceProcAddr");
        dlclose(f->lib);
        f->lib = NULL;
        return false;
    }
    f->vkCreateInstance = (PFN_vkCreateInstance)f->gipa(NULL, "vkCreateInstance");
    f->vkEnumerateInstanceLayerProperties =
        (PFN_vkEnumerateInstanceLayerProperties)f->gipa(NULL, "vkEnumerateInstanceLayerProperties");
    return f->vkCreateInstance != NULL;
}

static void load_instance_fns(vk_fns *f, VkInstance inst)
{
#define LOAD_(fn) f->fn = (PFN_##fn)f->gipa(inst, #fn);
    VK_FUNCS(LOAD_)
#undef LOAD_
}

static bool has_layer(vk_fns *f, const char *name)
{
    uint32_t n = 0;
    if (!f->vkEnumerateInstanceLayerProperties || f->vkEnumerateInstanceLayerProperties(&n, NULL) || !n)
        return false;
    VkLayerProperties *lp = calloc(n, sizeof *lp);
    bool found = false;
    if (lp && !f->vkEnumerateInstanceLayerProperties(&n, lp))
        for (uint32_t i = 0; i < n && !found; i++)
            found = !strcmp(lp[i].layerName, name);
    free(lp);
    return found;
}

/* An instance (Vulkan 1.2), optionally with the validation layer and its messenger. */
static VkResult make_instance(vk_fns *f, bool validate, const VkDebugUtilsMessengerCreateInfoEXT *mi, VkInstance *out)
{
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO, .pApplicationName = "mlc-bench",
                             .apiVersion = VK_API_VERSION_1_2};
    const char *layers[] = {"VK_LAYER_KHRONOS_validation"};
    const char *exts[] = {VK_EXT_DEBUG_UTILS_EXTENSION_NAME};
    VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pApplicationInfo = &app};
    if (validate) {
        ci.pNext = mi; /* findings of vkCreateInstance and vkDestroyInstance too */
        ci.enabledLayerCount = 1;
        ci.ppEnabledLayerNames = layers;
        ci.enabledExtensionCount = 1;
        ci.ppEnabledExtensionNames = exts;
    }
    VkResult r = f->vkCreateInstance(&ci, NULL, out);
    if (r == VK_SUCCESS)
        load_instance_fns(f, *out);
    return r;
}

static int list_devices(vk_fns *f, VkInstance inst, VkPhysicalDevice *pd, int cap)
{
    uint32_t n = (uint32_t)cap;
    VkResult r = f->vkEnumeratePhysicalDevices(inst, &n, pd);
    return r == VK_SUCCESS || r == VK_INCOMPLETE ? (int)n : 0;
}

int mlc_vk_device_count(char *why, size_t cap)
{
    vk_fns f;
    VkInstance inst;
    if (!load_lib(&f, why, cap))
        return 0;
    int n = 0;
    VkResult r = make_instance(&f, false, NULL, &inst);
    if (r != VK_SUCCESS) {
        snprintf(why, cap, "vkCreateInstance failed (VkResult %d): no Vulkan 1.2 driver installed (Mesa's lavapipe: mesa-vulkan-drivers)", (int)r);
    } else {
        VkPhysicalDevice pd[16];
        n = list_devices(&f, inst, pd, 16);
        if (!n)
            snprintf(why, cap, "the Vulkan loader found no device (Mesa's lavapipe: mesa-vulkan-drivers)");
        f.vkDestroyInstance(inst, NULL);
    }
    dlclose(f.lib);
    return n;
}

static void fill_info(vk_fns *f, VkPhysicalDevice pd, mlc_vk_info *out)
{
    VkPhysicalDeviceDriverProperties drv = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
    VkPhysicalDeviceSubgroupProperties sub = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES,
                                              .pNext = &drv};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &sub};
    VkPhysicalDeviceProperties p;
    f->vkGetPhysicalDeviceProperties(pd, &p);
    memset(out, 0, sizeof *out);
    if (p.apiVersion >= VK_API_VERSION_1_2) {
        f->vkGetPhysicalDeviceProperties2(pd, &p2);
        snprintf(out->driver, sizeof out->driver, "%.40s: %.80s", drv.driverName, drv.driverInfo);
        out->subgroup = sub.subgroupSize;
        out->subgroup_arith = (sub.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                              (sub.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT);
    } else {
        snprintf(out->driver, sizeof out->driver, "driver version %u", p.driverVersion);
    }
    snprintf(out->name, sizeof out->name, "%.127s", p.deviceName);
    static const char *const types[] = {"other", "integrated", "discrete", "virtual", "cpu"};
    snprintf(out->type, sizeof out->type, "%s", p.deviceType <= 4 ? types[p.deviceType] : "other");
    out->api = p.apiVersion;
    VkPhysicalDeviceMemoryProperties mp;
    f->vkGetPhysicalDeviceMemoryProperties(pd, &mp);
    for (uint32_t i = 0; i < mp.memoryHeapCount; i++)
        if (mp.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)
            out->mem_total += mp.memoryHeaps[i].size;
    snprintf(out->heaps, sizeof out->heaps, "%u heap%s, %.1f GiB device-local", mp.memoryHeapCount,
             mp.memoryHeapCount == 1 ? "" : "s", (double)out->mem_total / 1073741824.0);
}

bool mlc_vk_device_info(int dev, mlc_vk_info *out)
{
    vk_fns f;
    char why[256];
    VkInstance inst;
    bool ok = false;
    if (!load_lib(&f, why, sizeof why))
        return false;
    if (make_instance(&f, false, NULL, &inst) == VK_SUCCESS) {
        VkPhysicalDevice pd[16];
        if (dev >= 0 && dev < list_devices(&f, inst, pd, 16)) {
            fill_info(&f, pd[dev], out);
            ok = true;
        }
        f.vkDestroyInstance(inst, NULL);
    }
    dlclose(f.lib);
    return ok;
}

/* ---------------------------------------------------------------- open / close */

static VkBool32 VKAPI_PTR on_validation(VkDebugUtilsMessageSeverityFlagBitsEXT sev,
                                        VkDebugUtilsMessageTypeFlagsEXT type,
                                        const VkDebugUtilsMessengerCallbackDataEXT *data, void *user)
{
    (void)type;
    mlc_vk *v = user;
    /* errors and warnings alike: a warning (a performance trap, undefined behaviour the
     * layer is not sure of) is a finding too */
    const VkDebugUtilsMessageSeverityFlagsEXT finding =
        VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT;
    if ((sev & finding) && !v->verr.status) {
        char one[400];
        snprintf(one, sizeof one, "%s: %s", sev & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT ? "error" : "warning",
                 data->pMessage ? data->pMessage : "?");
        for (char *c = one; *c; c++)
            if (*c == '\n')
                *c = ' ';
        mlc_err_set(&v->verr, MLC_ERR_BACKEND, "vulkan: validation layer: %s", one);
    }
    return VK_FALSE;
}

static mlc_status fail_vk(mlc_err *err, VkResult r, const char *what)
{
    if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY)
        return mlc_err_set(err, MLC_ERR_NOMEM, "vulkan: %s: out of %s memory", what,
                           r == VK_ERROR_OUT_OF_HOST_MEMORY ? "host" : "device");
    if (r == VK_ERROR_DEVICE_LOST)
        return mlc_err_set(err, MLC_ERR_BACKEND, "vulkan: %s: device lost", what);
    return mlc_err_set(err, MLC_ERR_BACKEND, "vulkan: %s failed (VkResult %d)", what, (int)r);
}

/* A memory type with all of want (and, preferably, also of prefer). */
static int mem_type(const mlc_vk *v, uint32_t bits, VkMemoryPropertyFlags want, VkMemoryPropertyFlags prefer)
{
    int any = -1;
    for (uint32_t i = 0; i < v->memp.memoryTypeCount; i++) {
        VkMemoryPropertyFlags fl = v->memp.memoryTypes[i].propertyFlags;
        if (!(bits & (1u << i)) || (fl & want) != want)
            continue;
        if ((fl & prefer) == prefer)
            return (int)i;
        if (any < 0)
            any = (int)i;
    }
    return any;
}

static VkResult make_buffer(mlc_vk *v, size_t bytes, VkMemoryPropertyFlags want, VkMemoryPropertyFlags prefer,
                            VkBuffer *buf, VkDeviceMemory *mem)
{
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = bytes,
                             .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                      VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                             .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    VkResult r = v->f.vkCreateBuffer(v->dev, &bi, NULL, buf);
    if (r)
        return r;
    VkMemoryRequirements req;
    v->f.vkGetBufferMemoryRequirements(v->dev, *buf, &req);
    int t = mem_type(v, req.memoryTypeBits, want, prefer);
    VkMemoryAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .allocationSize = req.size,
                               .memoryTypeIndex = (uint32_t)t};
    r = t < 0 ? VK_ERROR_OUT_OF_DEVICE_MEMORY : v->f.vkAllocateMemory(v->dev, &ai, NULL, mem);
    if (!r)
        r = v->f.vkBindBufferMemory(v->dev, *buf, *mem, 0);
    if (r) {
        v->f.vkDestroyBuffer(v->dev, *buf, NULL);
        *buf = VK_NULL_HANDLE;
    }
    return r;
}

static mlc_status pick_device(mlc_vk *v, int dev, mlc_err *err)
{
    VkPhysicalDevice pd[16];
    int n = list_devices(&v->f, v->inst, pd, 16);
    if (dev < 0 || dev >= n)
        return mlc_err_set(err, MLC_ERR_ARG, "vulkan: no device %d (%d present)", dev, n);
    v->pd = pd[dev];
    fill_info(&v->f, v->pd, &v->info);
    if (v->info.api < VK_API_VERSION_1_2)
        return mlc_err_set(err, MLC_ERR_UNSUPPORTED, "vulkan: device %d (%s) supports Vulkan %u.%u; 1.2 is needed",
                           dev, v->info.name, VK_API_VERSION_MAJOR(v->info.api), VK_API_VERSION_MINOR(v->info.api));
    VkQueueFamilyProperties qf[16];
    uint32_t nq = 16;
    v->f.vkGetPhysicalDeviceQueueFamilyProperties(v->pd, &nq, qf);
    v->qfam = UINT32_MAX;
    for (uint32_t i = 0; i < nq && v->qfam == UINT32_MAX; i++)
        if (qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT)
            v->qfam = i;
    if (v->qfam == UINT32_MAX)
        return mlc_err_set(err, MLC_ERR_UNSUPPORTED, "vulkan: device %d (%s) has no compute queue", dev, v->info.name);
    VkPhysicalDeviceProperties p;
    v->f.vkGetPhysicalDeviceProperties(v->pd, &p);
    VkPhysicalDeviceMaintenance3Properties m3 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &m3};
    v->f.vkGetPhysicalDeviceProperties2(v->pd, &p2);
    v->max_alloc = m3.maxMemoryAllocationSize;
    v->max_range = p.limits.maxStorageBufferRange;
    v->f.vkGetPhysicalDeviceMemoryProperties(v->pd, &v->memp);
    return MLC_OK;
}

static mlc_status make_device(mlc_vk *v, mlc_err *err)
{
    float prio = 1.0f;
    VkDeviceQueueCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO, .queueFamilyIndex = v->qfam,
                                  .queueCount = 1, .pQueuePriorities = &prio};
    VkDeviceCreateInfo di = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, .queueCreateInfoCount = 1,
                             .pQueueCreateInfos = &qi};
    VkResult r = v->f.vkCreateDevice(v->pd, &di, NULL, &v->dev);
    if (r)
        return fail_vk(err, r, "vkCreateDevice");
    v->f.vkGetDeviceQueue(v->dev, v->qfam, 0, &v->queue);
    VkCommandPoolCreateInfo pi = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                  .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT, .queueFamilyIndex = v->qfam};
    VkFenceCreateInfo fi = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    if ((r = v->f.vkCreateCommandPool(v->dev, &pi, NULL, &v->cpool)) || (r = v->f.vkCreateFence(v->dev, &fi, NULL, &v->fence)))
        return fail_vk(err, r, "command pool");
    return MLC_OK;
}

/* One layout for every shader: 8 storage buffers, 128 bytes of push constants. */
static mlc_status make_layout(mlc_vk *v, mlc_err *err)
{
    VkDescriptorSetLayoutBinding b[MLC_VK_BINDINGS + 1];
    for (uint32_t i = 0; i <= MLC_VK_BINDINGS; i++)
        b[i] = (VkDescriptorSetLayoutBinding){.binding = i, .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                              .descriptorCount = 1, .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT};
    VkDescriptorSetLayoutCreateInfo li = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
                                          .bindingCount = MLC_VK_BINDINGS + 1, .pBindings = b};
    VkPushConstantRange pr = {.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .size = 128};
    VkPipelineLayoutCreateInfo pli = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO, .setLayoutCount = 1,
                                      .pSetLayouts = &v->dsl, .pushConstantRangeCount = 1, .pPushConstantRanges = &pr};
    VkDescriptorPoolSize ps = {.type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, .descriptorCount = 1024 * (MLC_VK_BINDINGS + 1)};
    VkDescriptorPoolCreateInfo dpi = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO, .maxSets = 1024,
                                      .poolSizeCount = 1, .pPoolSizes = &ps};
    VkResult r;
    if ((r = v->f.vkCreateDescriptorSetLayout(v->dev, &li, NULL, &v->dsl)) ||
        (r = v->f.vkCreatePipelineLayout(v->dev, &pli, NULL, &v->layout)) ||
        (r = v->f.vkCreateDescriptorPool(v->dev, &dpi, NULL, &v->dpool)))
        return fail_vk(err, r, "pipeline layout");
    return MLC_OK;
}

static mlc_status make_host_buffers(mlc_vk *v, mlc_err *err)
{
    const VkMemoryPropertyFlags hv = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    VkResult r;
    if ((r = make_buffer(v, STAGING_BYTES, hv, VK_MEMORY_PROPERTY_HOST_CACHED_BIT, &v->stage_buf, &v->stage_mem)) ||
        (r = make_buffer(v, 256, hv, 0, &v->status_buf, &v->status_mem)) ||
        (r = v->f.vkMapMemory(v->dev, v->stage_mem, 0, VK_WHOLE_SIZE, 0, (void **)&v->stage)) ||
        (r = v->f.vkMapMemory(v->dev, v->status_mem, 0, VK_WHOLE_SIZE, 0, (void **)&v->status)))
        return fail_vk(err, r, "staging memory");
    memset(v->status, 0, 256);
    return MLC_OK;
}

mlc_status mlc_vk_open(int dev, mlc_vk_validation validation, mlc_vk **out, mlc_err *err)
{
    *out = NULL;
    mlc_vk *v = calloc(1, sizeof *v);
    if (!v)
        return mlc_err_set(err, MLC_ERR_NOMEM, "vulkan: out of host memory");
    char why[256];
    mlc_status s;
    if (!load_lib(&v->f, why, sizeof why)) {
        free(v);
        return mlc_err_set(err, MLC_ERR_UNSUPPORTED, "vulkan: %s", why);
    }
    const bool validate = validation != MLC_VK_VALIDATE_OFF && has_layer(&v->f, "VK_LAYER_KHRONOS_validation");
    if (validation == MLC_VK_VALIDATE_ON && !validate) {
        s = mlc_err_set(err, MLC_ERR_UNSUPPORTED, "vulkan: validation asked for, but VK_LAYER_KHRONOS_validation is not installed (vulkan-validationlayers)");
        goto fail;
    }
    const VkDebugUtilsMessengerCreateInfoEXT mi = {
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT,
        .pfnUserCallback = on_validation, .pUserData = v};
    VkResult r = make_instance(&v->f, validate, &mi, &v->inst);
    if (r) {
        s = fail_vk(err, r, "vkCreateInstance (is a Vulkan 1.2 driver installed?)");
        goto fail;
    }
    /* without the messenger the layer's findings would go unseen: refuse */
    if (validate && (!v->f.vkCreateDebugUtilsMessengerEXT ||
                     v->f.vkCreateDebugUtilsMessengerEXT(v->inst, &mi, NULL, &v->messenger) != VK_SUCCESS)) {
        s = mlc_err_set(err, MLC_ERR_UNSUPPORTED, "vulkan: the validation layer is loaded, but its debug-utils messenger could not be made");
        goto fail;
    }
    if ((s = pick_device(v, dev, err)) || (s = make_device(v, err)) || (s = make_layout(v, err)) ||
        (s = make_host_buffers(v, err)))
        goto fail;
    *out = v;
    return MLC_OK;
fail:
    mlc_vk_close(v);
    return s;
}

const mlc_vk_info *mlc_vk_info_of(const mlc_vk *v)
{
    return &v->info;
}

void mlc_vk_close(mlc_vk *v)
{
    if (!v)
        return;
    vk_fns *f = &v->f;
    if (v->dev) {
        f->vkDeviceWaitIdle(v->dev);
        for (int i = 0; i < v->n_pipes; i++)
            f->vkDestroyPipeline(v->dev, v->pipes[i].p, NULL);
        for (int i = 0; i < v->n_chunks; i++) {
            f->vkDestroyBuffer(v->dev, v->chunks[i].buf, NULL);
            f->vkFreeMemory(v->dev, v->chunks[i].mem, NULL);
            free(v->chunks[i].free);
        }
        VkBuffer bufs[] = {v->stage_buf, v->status_buf};
        VkDeviceMemory mems[] = {v->stage_mem, v->status_mem};
        for (int i = 0; i < 2; i++) {
            if (bufs[i])
                f->vkDestroyBuffer(v->dev, bufs[i], NULL);
            if (mems[i])
                f->vkFreeMemory(v->dev, mems[i], NULL);
        }
        if (v->dpool)
            f->vkDestroyDescriptorPool(v->dev, v->dpool, NULL);
        if (v->layout)
            f->vkDestroyPipelineLayout(v->dev, v->layout, NULL);
        if (v->dsl)
            f->vkDestroyDescriptorSetLayout(v->dev, v->dsl, NULL);
        if (v->fence)
            f->vkDestroyFence(v->dev, v->fence, NULL);
        if (v->cpool)
            f->vkDestroyCommandPool(v->dev, v->cpool, NULL);
        f->vkDestroyDevice(v->dev, NULL);
    }
    if (v->messenger)
        f->vkDestroyDebugUtilsMessengerEXT(v->inst, v->messenger, NULL);
    if (v->inst)
        f->vkDestroyInstance(v->inst, NULL);
    if (f->lib)
        dlclose(f->lib);
    free(v->sets);
    mlc_vk_cmdlist_free(&v->pending);
    mlc_vk_cmdcache_free(&v->recorded);
    free(v);
}

/* ---------------------------------------------------------------- memory */

static bool range_push(chunk *c, int at, range r)
{
    if (c->n_free == c->cap_free) {
        int cap = c->cap_free ? 2 * c->cap_free : 16;
        range *nr = realloc(c->free, (size_t)cap * sizeof *nr);
        if (!nr)
            return false;
        c->free = nr;
        c->cap_free = cap;
    }
    memmove(c->free + at + 1, c->free + at, (size_t)(c->n_free - at) * sizeof *c->free);
    c->free[at] = r;
    c->n_free++;
    return true;
}

/* First fit in chunk i; false when nothing fits. */
static bool carve(mlc_vk *v, int i, size_t bytes, mlc_vk_span *out)
{
    chunk *c = &v->chunks[i];
    for (int k = 0; k < c->n_free; k++) {
        if (c->free[k].size < bytes)
            continue;
        *out = (mlc_vk_span){i, c->free[k].off, bytes};
        c->free[k].off += bytes;
        c->free[k].size -= bytes;
        if (!c->free[k].size) {
            memmove(c->free + k, c->free + k + 1, (size_t)(c->n_free - k - 1) * sizeof *c->free);
            c->n_free--;
        }
        return true;
    }
    return false;
}

size_t mlc_vk_max_buffer(const mlc_vk *v)
{
    VkDeviceSize m = v->max_alloc && v->max_alloc < v->max_range ? v->max_alloc : v->max_range;
    return (size_t)(m / ALIGN * ALIGN);
}

mlc_status mlc_vk_alloc(mlc_vk *v, size_t bytes, mlc_vk_span *out, mlc_err *err)
{
    size_t want = (bytes + ALIGN - 1) / ALIGN * ALIGN;
    if (!want)
        want = ALIGN;
    if (want > v->max_range || (v->max_alloc && want > v->max_alloc))
        return mlc_err_set(err, MLC_ERR_NOMEM,
                           "vulkan: a buffer of %zu bytes exceeds the device's limits (storage buffer range %llu, allocation %llu bytes)",
                           bytes, (unsigned long long)v->max_range, (unsigned long long)v->max_alloc);
    for (int i = 0; i < v->n_chunks; i++)
        if (carve(v, i, want, out)) {
            v->in_use += want;
            return MLC_OK;
        }
    if (v->n_chunks == MAX_CHUNKS)
        return mlc_err_set(err, MLC_ERR_NOMEM, "vulkan: out of memory chunks (%d in use)", MAX_CHUNKS);
    /* CHUNK_BYTES, or as much of it as one binding reaches (lavapipe: 128 MiB) */
    const size_t cap = mlc_vk_max_buffer(v) < CHUNK_BYTES ? mlc_vk_max_buffer(v) : CHUNK_BYTES;
    size_t size = want > cap ? want : cap;
    chunk *c = &v->chunks[v->n_chunks];
    memset(c, 0, sizeof *c);
    VkResult r = make_buffer(v, size, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0, &c->buf, &c->mem);
    if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY && size > want) /* a smaller chunk may still fit */
        r = make_buffer(v, size = want, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0, &c->buf, &c->mem);
    if (r)
        return mlc_err_set(err, MLC_ERR_NOMEM,
                           "vulkan: out of device memory for a buffer of %zu bytes (%.1f MiB in use of %.1f MiB device-local; VkResult %d)",
                           bytes, (double)v->in_use / 1048576.0, (double)v->info.mem_total / 1048576.0, (int)r);
    c->size = size;
    if (!range_push(c, 0, (range){0, size})) {
        v->f.vkDestroyBuffer(v->dev, c->buf, NULL);
        v->f.vkFreeMemory(v->dev, c->mem, NULL);
        return mlc_err_set(err, MLC_ERR_NOMEM, "vulkan: out of host memory");
    }
    v->n_chunks++;
    carve(v, v->n_chunks - 1, want, out);
    v->in_use += want;
    return MLC_OK;
}

void mlc_vk_free(mlc_vk *v, const mlc_vk_span *s)
{
    if (!s || s->chunk < 0 || s->chunk >= v->n_chunks)
        return;
    chunk *c = &v->chunks[s->chunk];
    size_t size = s->size;
    v->in_use -= size;
    int k = 0;
    while (k < c->n_free && c->free[k].off < s->offset)
        k++;
    bool left = k > 0 && c->free[k - 1].off + c->free[k - 1].size == s->offset;
    bool right = k < c->n_free && s->offset + size == c->free[k].off;
    if (left && right) {
        c->free[k - 1].size += size + c->free[k].size;
        memmove(c->free + k, c->free + k + 1, (size_t)(c->n_free - k - 1) * sizeof *c->free);
        c->n_free--;
    } else if (left) {
        c->free[k - 1].size += size;
    } else if (right) {
        c->free[k].off = s->offset;
        c->free[k].size += size;
    } else {
        range_push(c, k, (range){s->offset, size}); /* on failure the span is lost, not corrupted */
    }
}

/* ---------------------------------------------------------------- commands */

/* Queues c for the next submission. */
static void push(mlc_vk *v, const mlc_vk_cmd *c)
{
    if (!mlc_vk_cmdlist_push(&v->pending, c))
        v->pending_oom = true;
}

/* Orders every command recorded so far before every later one. */
static void barrier(mlc_vk *v, VkCommandBuffer cb)
{
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                                           VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT |
                                           VK_ACCESS_HOST_READ_BIT};
    const VkPipelineStageFlags st = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
    v->f.vkCmdPipelineBarrier(cb, st, st | VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
}

/* Records e's list into e's command buffer (allocated on first use), a barrier after each
 * command. Not one-time-submit: the buffer is submitted again for an equal list. */
static VkResult record(mlc_vk *v, mlc_vk_recorded *e)
{
    VkResult r;
    if (!e->cb) {
        VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                          .commandPool = v->cpool, .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                          .commandBufferCount = 1};
        if ((r = v->f.vkAllocateCommandBuffers(v->dev, &ai, &e->cb)))
            return r;
    } else if ((r = v->f.vkResetCommandBuffer(e->cb, 0))) {
        return r;
    }
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    if ((r = v->f.vkBeginCommandBuffer(e->cb, &bi)))
        return r;
    for (int i = 0; i < e->list.n; i++) {
        const mlc_vk_cmd *c = &e->list.cmds[i];
        if (c->kind == MLC_VK_CMD_COPY) {
            v->f.vkCmdCopyBuffer(e->cb, c->src, c->dst, 1, &c->copy);
        } else {
            v->f.vkCmdBindPipeline(e->cb, VK_PIPELINE_BIND_POINT_COMPUTE, c->pipe);
            v->f.vkCmdBindDescriptorSets(e->cb, VK_PIPELINE_BIND_POINT_COMPUTE, v->layout, 0, 1, &c->set, 0, NULL);
            v->f.vkCmdPushConstants(e->cb, v->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, c->n_pc * 4, c->pc);
            v->f.vkCmdDispatch(e->cb, c->grid[0], c->grid[1], c->grid[2]);
        }
        barrier(v, e->cb);
    }
    return v->f.vkEndCommandBuffer(e->cb);
}

/* The command buffer that runs the pending list: one recorded before from an equal list, or
 * a new recording. */
static VkResult command_buffer(mlc_vk *v, VkCommandBuffer *out)
{
    mlc_vk_recorded *e = mlc_vk_cmdcache_find(&v->recorded, &v->pending);
    if (e) {
        v->pending.n = 0;
    } else {
        e = mlc_vk_cmdcache_take(&v->recorded, &v->pending);
        VkResult r = record(v, e);
        if (r) {
            e->list.n = 0; /* half recorded: never matched again */
            return r;
        }
    }
    *out = e->cb;
    return VK_SUCCESS;
}

void mlc_vk_stats(const mlc_vk *v, uint64_t *recorded, uint64_t *reused)
{
    *recorded = v->recorded.recorded;
    *reused = v->recorded.reused;
}

/* Submits the pending list and waits for it. */
static mlc_status submit(mlc_vk *v, mlc_err *err)
{
    if (v->pending_oom) {
        v->pending_oom = false;
        v->pending.n = 0;
        return mlc_err_set(err, MLC_ERR_NOMEM, "vulkan: out of host memory for commands");
    }
    VkCommandBuffer cb = VK_NULL_HANDLE;
    VkResult r = command_buffer(v, &cb);
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &cb};
    if (!r)
        r = v->f.vkQueueSubmit(v->queue, 1, &si, v->fence);
    if (r)
        return fail_vk(err, r, "queue submission");
    r = v->f.vkWaitForFences(v->dev, 1, &v->fence, VK_TRUE, WAIT_NS);
    v->f.vkResetFences(v->dev, 1, &v->fence);
    if (r == VK_TIMEOUT)
        return mlc_err_set(err, MLC_ERR_BACKEND, "vulkan: the device did not finish within %llu s (hung?)",
                           WAIT_NS / 1000000000ull);
    return r ? fail_vk(err, r, "waiting for the device") : MLC_OK;
}

static const char *const status_ops[] = {"get_rows: an id outside the table",
                                         "kv_store: a slot or position outside the cache",
                                         "attention: a slot or position outside the cache",
                                         "gather: a row outside x", "rope: a bad position"};

mlc_status mlc_vk_flush(mlc_vk *v, mlc_err *err)
{
    mlc_status s = v->pending.n || v->pending_oom ? submit(v, err) : MLC_OK;
    v->stage_used = 0;
    uint32_t bits = v->status[0];
    if (bits && !s) {
        for (int i = 0; i < (int)(sizeof status_ops / sizeof status_ops[0]); i++)
            if (bits & (1u << i)) {
                s = mlc_err_set(err, MLC_ERR_RANGE, "vulkan: %s", status_ops[i]);
                break;
            }
    }
    v->status[0] = 0;
    if (v->verr.status && !s)
        s = mlc_err_set(err, v->verr.status, "%s", v->verr.msg);
    v->verr.status = MLC_OK;
    return s;
}

/* Staging bytes for the next copy: up to want, at least 1; flushes when full. */
static mlc_status stage_room(mlc_vk *v, size_t want, size_t *got, mlc_err *err)
{
    if (v->stage_used + ALIGN > STAGING_BYTES) {
        mlc_status s = mlc_vk_flush(v, err);
        if (s)
            return s;
    }
    size_t room = STAGING_BYTES - v->stage_used;
    *got = want < room ? want : room;
    return MLC_OK;
}

mlc_status mlc_vk_upload(mlc_vk *v, const mlc_vk_span *dst, size_t offset, size_t bytes,
                         mlc_vk_fill_fn fill, void *arg, mlc_err *err)
{
    for (size_t done = 0; done < bytes;) {
        size_t n;
        mlc_status s = stage_room(v, bytes - done, &n, err);
        if (s)
            return s;
        fill(v->stage + v->stage_used, done, n, arg);
        mlc_vk_cmd c;
        memset(&c, 0, sizeof c);
        c.kind = MLC_VK_CMD_COPY;
        c.src = v->stage_buf;
        c.dst = v->chunks[dst->chunk].buf;
        c.copy = (VkBufferCopy){.srcOffset = v->stage_used, .dstOffset = dst->offset + offset + done, .size = n};
        push(v, &c);
        v->stage_used = (v->stage_used + n + ALIGN - 1) / ALIGN * ALIGN;
        done += n;
    }
    return MLC_OK;
}

mlc_status mlc_vk_download(mlc_vk *v, void *dst, const mlc_vk_span *src, size_t offset, size_t bytes,
                           mlc_err *err)
{
    mlc_status s = mlc_vk_flush(v, err);
    for (size_t done = 0; !s && done < bytes;) {
        size_t n = bytes - done < STAGING_BYTES ? bytes - done : STAGING_BYTES;
        mlc_vk_cmd c;
        memset(&c, 0, sizeof c);
        c.kind = MLC_VK_CMD_COPY;
        c.src = v->chunks[src->chunk].buf;
        c.dst = v->stage_buf;
        c.copy = (VkBufferCopy){.srcOffset = src->offset + offset + done, .dstOffset = 0, .size = n};
        push(v, &c);
        if (!(s = mlc_vk_flush(v, err)))
            memcpy((uint8_t *)dst + done, v->stage, n);
        done += n;
    }
    return s;
}

/* ---------------------------------------------------------------- pipelines */

static VkPipeline pipeline(mlc_vk *v, const char *name, mlc_err *err)
{
    for (int i = 0; i < v->n_pipes; i++)
        if (!strcmp(v->pipes[i].name, name))
            return v->pipes[i].p;
    const mlc_vk_spirv *sp = NULL;
    for (int i = 0; i < mlc_vk_spirv_count && !sp; i++)
        if (!strcmp(mlc_vk_spirv_table[i].name, name))
            sp = &mlc_vk_spirv_table[i];
    if (!sp) {
        mlc_err_set(err, MLC_ERR_UNSUPPORTED, "vulkan: no shader '%s' in this build", name);
        return VK_NULL_HANDLE;
    }
    if (v->n_pipes == MAX_PIPES) {
        mlc_err_set(err, MLC_ERR_BACKEND, "vulkan: too many pipelines");
        return VK_NULL_HANDLE;
    }
    VkShaderModuleCreateInfo mi = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                   .codeSize = sp->n_words * 4, .pCode = sp->words};
    VkShaderModule mod;
    VkResult r = v->f.vkCreateShaderModule(v->dev, &mi, NULL, &mod);
    if (r) {
        fail_vk(err, r, "shader module");
        return VK_NULL_HANDLE;
    }
    VkComputePipelineCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO, .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                  .module = mod, .pName = "main"},
        .layout = v->layout};
    VkPipeline p;
    r = v->f.vkCreateComputePipelines(v->dev, VK_NULL_HANDLE, 1, &ci, NULL, &p);
    v->f.vkDestroyShaderModule(v->dev, mod, NULL);
    if (r) {
        char what[80];
        snprintf(what, sizeof what, "creating the pipeline of shader '%s'", name);
        fail_vk(err, r, what);
        return VK_NULL_HANDLE;
    }
    snprintf(v->pipes[v->n_pipes].name, sizeof v->pipes[0].name, "%s", name);
    v->pipes[v->n_pipes++].p = p;
    return p;
}

/* The descriptor set binding these buffers (and the status word at binding 7): made once per
 * combination; there are few, since buffers share chunks. */
static VkDescriptorSet descriptor_set(mlc_vk *v, const VkBuffer b[MLC_VK_BINDINGS], mlc_err *err)
{
    for (int i = 0; i < v->n_sets; i++)
        if (!memcmp(v->sets[i].b, b, sizeof v->sets[i].b))
            return v->sets[i].set;
    if (v->n_sets == v->cap_sets) {
        int cap = v->cap_sets ? 2 * v->cap_sets : 16;
        dset *ns = cap <= 1024 ? realloc(v->sets, (size_t)cap * sizeof *ns) : NULL;
        if (!ns) {
            mlc_err_set(err, MLC_ERR_NOMEM, "vulkan: out of descriptor sets");
            return VK_NULL_HANDLE;
        }
        v->sets = ns;
        v->cap_sets = cap;
    }
    VkDescriptorSetAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                      .descriptorPool = v->dpool, .descriptorSetCount = 1, .pSetLayouts = &v->dsl};
    VkDescriptorSet set;
    VkResult r = v->f.vkAllocateDescriptorSets(v->dev, &ai, &set);
    if (r) {
        fail_vk(err, r, "descriptor set");
        return VK_NULL_HANDLE;
    }
    VkDescriptorBufferInfo bi[MLC_VK_BINDINGS + 1];
    VkWriteDescriptorSet w[MLC_VK_BINDINGS + 1];
    for (uint32_t i = 0; i <= MLC_VK_BINDINGS; i++) {
        bi[i] = (VkDescriptorBufferInfo){i < MLC_VK_BINDINGS ? b[i] : v->status_buf, 0, VK_WHOLE_SIZE};
        w[i] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET, .dstSet = set, .dstBinding = i,
                                      .descriptorCount = 1, .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                      .pBufferInfo = &bi[i]};
    }
    v->f.vkUpdateDescriptorSets(v->dev, MLC_VK_BINDINGS + 1, w, 0, NULL);
    memcpy(v->sets[v->n_sets].b, b, sizeof v->sets[0].b);
    v->sets[v->n_sets++].set = set;
    return set;
}

void mlc_vk_grid(uint32_t n, uint32_t *gx, uint32_t *gy)
{
    *gx = n < 65535u ? (n ? n : 1u) : 65535u;
    *gy = (n + *gx - 1) / *gx;
    if (!*gy)
        *gy = 1;
}

mlc_status mlc_vk_dispatch(mlc_vk *v, const char *shader, const mlc_vk_span *const bind[MLC_VK_BINDINGS],
                           const uint32_t *pc, int n_pc, uint32_t gx, uint32_t gy, uint32_t gz, mlc_err *err)
{
    VkPipeline p = pipeline(v, shader, err);
    if (!p)
        return err->status;
    VkBuffer b[MLC_VK_BINDINGS];
    for (int i = 0; i < MLC_VK_BINDINGS; i++)
        b[i] = bind[i] ? v->chunks[bind[i]->chunk].buf : v->status_buf;
    VkDescriptorSet set = descriptor_set(v, b, err);
    if (!set)
        return err->status;
    if (n_pc < 0 || n_pc > 32)
        return mlc_err_set(err, MLC_ERR_BACKEND, "vulkan: %s: %d push constants (32 at most)", shader, n_pc);
    mlc_vk_cmd c;
    memset(&c, 0, sizeof c);
    c.kind = MLC_VK_CMD_DISPATCH;
    c.pipe = p;
    c.set = set;
    c.n_pc = (uint32_t)n_pc;
    memcpy(c.pc, pc, (size_t)n_pc * 4);
    c.grid[0] = gx;
    c.grid[1] = gy;
    c.grid[2] = gz;
    push(v, &c);
    return MLC_OK;
}
