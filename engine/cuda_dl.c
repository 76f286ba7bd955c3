/*
 * cuda_dl.c: libcatanet's side of the CUDA plugin (cuda_plugin.h): finds and dlopens
 * libcatanet-cuda.so.MAJOR on first use and forwards the backend's entry points (backend_cuda.h)
 * to its table, so that the library and every program linked with it start without the CUDA
 * runtime installed. Where the plugin, the CUDA runtime or a device is missing, CUDA engines fail
 * with the reason and catanet_cuda_device_count() is 0.
 *
 * Where the plugin is looked for, first match wins:
 *   1. $CATANET_CUDA_PLUGIN: the plugin's path (only that one is tried)
 *   2. beside the running program's folder: <dir of /proc/self/exe>/../libcatanet-cuda.so.MAJOR
 *      (the build tree: build/tools/x, build/tests/x, build/training/x, build/ffmpeg/ffmpeg)
 *   3. the installed one: LIBDIR/catanet/libcatanet-cuda.so.MAJOR
 *
 * The library keeps no global state but this: the plugin's handle and table, loaded once per
 * process behind pthread_once and never unloaded (a dlopen handle is process-wide anyway, and
 * unloading CUDA's runtime while any engine could still run is never safe).
 */
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend_cuda.h"
#include "catanet.h"
#include "config.h"
#include "cuda_plugin.h"
#include "error.h"

static pthread_once_t plugin_once = PTHREAD_ONCE_INIT;
static const CatanetCudaPlugin *plugin_table;
static char plugin_err[1024];

/* dlopen one candidate; 0, or -1 with the reason in plugin_err */
static int try_load(const char *path)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *why = dlerror();
        snprintf(plugin_err, sizeof(plugin_err), "cannot load the CUDA plugin: %s", why ? why : path);
        return -1;
    }
    const CatanetCudaPlugin *t = dlsym(h, CATANET_CUDA_PLUGIN_SYMBOL);
    if (!t) {
        snprintf(plugin_err, sizeof(plugin_err), "%s is not a catanet CUDA plugin (no %s)", path,
                 CATANET_CUDA_PLUGIN_SYMBOL);
    } else if (t->abi != CATANET_CUDA_PLUGIN_ABI || strcmp(t->version, catanet_version()) ||
               t->engine_size != sizeof(CatanetEngine) || t->model_size != sizeof(CatanetModel)) {
        snprintf(plugin_err, sizeof(plugin_err), "%s comes from another build of catanet (version %s, abi %d; "
                 "this library: %s, abi %d)", path, t->version, t->abi, catanet_version(), CATANET_CUDA_PLUGIN_ABI);
    } else {
        plugin_table = t;
        return 0;
    }
    dlclose(h);
    return -1;
}

static int exists(const char *path)
{
    return access(path, F_OK) == 0;
}

static void load_plugin(void)
{
    const char *env = secure_getenv("CATANET_CUDA_PLUGIN");
    if (env && *env) {
        try_load(env);
        return;
    }
    char exe[PATH_MAX], cand[PATH_MAX + 64];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            snprintf(cand, sizeof(cand), "%s/../%s", exe, CATANET_CUDA_PLUGIN_NAME);
            if (exists(cand)) {
                try_load(cand);
                return;
            }
        }
    }
    const char *installed = CATANET_PLUGINDIR "/" CATANET_CUDA_PLUGIN_NAME;
    if (exists(installed)) {
        try_load(installed);
        return;
    }
    /* A CPU-only build makes no plugin; saying so spares the user a search for a missing file. */
    snprintf(plugin_err, sizeof(plugin_err), "%sthe CUDA plugin %s is not installed (looked in %s and beside the "
             "program; CATANET_CUDA_PLUGIN may name it)",
             HAVE_CUDA ? "" : "this libcatanet was built without CUDA, and ",
             CATANET_CUDA_PLUGIN_NAME, CATANET_PLUGINDIR);
}

const CatanetCudaPlugin *catanet_cuda_plugin(char *err, size_t es)
{
    pthread_once(&plugin_once, load_plugin);
    if (!plugin_table)
        catanet_errf(err, es, CATANET_ERR_NO_DEVICE, "%s", plugin_err);
    return plugin_table;
}

/* ---- the engine backend's entry points, forwarded (each after a successful open, so loaded) ---- */

int catanet_cuda_device_count(void)
{
    const CatanetCudaPlugin *p = catanet_cuda_plugin(NULL, 0);
    return p ? p->device_count() : 0;
}

int catanet_cuda_usable(char *why, size_t size)
{
    const CatanetCudaPlugin *p = catanet_cuda_plugin(why, size);
    return p ? p->usable(why, size) : 0;
}

int catanet_cuda_open(CatanetEngine *e)
{
    char why[1024];
    const CatanetCudaPlugin *p = catanet_cuda_plugin(why, sizeof(why));
    if (!p)
        return catanet_engine_fail(e, CATANET_ERR_NO_DEVICE, "CUDA is not available: %s", why);
    return p->open(e);
}

void catanet_cuda_close(CatanetEngine *e)
{
    if (plugin_table)
        plugin_table->close(e);
}

int catanet_cuda_prepare(CatanetEngine *e, int width, int height)
{
    return plugin_table ? plugin_table->prepare(e, width, height) : CATANET_ERR_NO_DEVICE;
}

int catanet_cuda_process(CatanetEngine *e, const float *in, float *out)
{
    return plugin_table ? plugin_table->process(e, in, out) : CATANET_ERR_NO_DEVICE;
}

int catanet_cuda_process_image(CatanetEngine *e, const CatanetImage *in, CatanetImage *out)
{
    return plugin_table ? plugin_table->process_image(e, in, out) : CATANET_ERR_NO_DEVICE;
}

int64_t catanet_cuda_memory_bytes(const CatanetEngine *e)
{
    return plugin_table ? plugin_table->memory_bytes(e) : 0;
}

int catanet_cuda_profile(CatanetEngine *e, char *report, size_t size)
{
    return plugin_table ? plugin_table->profile(e, report, size) : CATANET_ERR_NO_DEVICE;
}

const char *catanet_cuda_device_name(const CatanetEngine *e)
{
    return plugin_table ? plugin_table->device_name(e) : "none";
}

int catanet_cuda_debug_cid(CatanetEngine *e, int32_t *cid, size_t n)
{
    return plugin_table ? plugin_table->debug_cid(e, cid, n) : CATANET_ERR_NO_DEVICE;
}
