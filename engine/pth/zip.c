/*
 * zip.c: the zip layer of PyTorch checkpoints (torch.save stores its records uncompressed).
 * Reading validates everything it reads from the file: end of central directory (zip64 aware) ->
 * central directory -> local headers -> stored data. Writing makes a stored zip with each record's
 * data 64-byte aligned, as torch does, and replaces the file atomically.
 * defines: catanet_pth_is_zip, catanet_zip_read, catanet_zip_find, catanet_zip_write, catanet_pth_put
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catanet.h"
#include "error.h"
#include "internal.h"

#define ZIP_LOCAL_SIG 0x04034b50u
#define ZIP_CENTRAL_SIG 0x02014b50u
#define ZIP_EOCD_SIG 0x06054b50u
#define ZIP64_LOCATOR_SIG 0x07064b50u
#define ZIP64_EOCD_SIG 0x06064b50u
#define ZIP_LOCAL_SIZE 30
#define ZIP_CENTRAL_SIZE 46
#define ZIP_EOCD_SIZE 22
#define ZIP64_LOCATOR_SIZE 20
#define ZIP64_EOCD_SIZE 56
#define ZIP_MAX_COMMENT 65535
#define ZIP_FLAG_ENCRYPTED 0x0001u
#define ZIP_FLAG_STRONG_ENCRYPTION 0x0040u
#define ZIP_EXTRA_ZIP64 0x0001u
#define ZIP_ALIGN 64 /* torch aligns every record's data to 64 bytes */

static uint32_t crc32_buf(const uint8_t *p, uint64_t n)
{
    uint32_t table[256];
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    uint32_t c = 0xffffffffu;
    for (uint64_t i = 0; i < n; i++)
        c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

int catanet_pth_is_zip(const uint8_t *buf, size_t size)
{
    return size >= 4 && rd32(buf) == ZIP_LOCAL_SIG;
}

/* ------------------------------------------------------------------------------------------------ */
/* zip reader                                                                                       */

static int cmp_entry(const void *a, const void *b)
{
    const CatanetZipEntry *x = a, *y = b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);
    if (c)
        return c;
    return x->name_len < y->name_len ? -1 : x->name_len > y->name_len;
}

const CatanetZipEntry *catanet_zip_find(const CatanetZipEntry *e, int n, const char *name, size_t len)
{
    CatanetZipEntry key = { name, len, NULL, 0 };
    return bsearch(&key, e, n, sizeof(*e), cmp_entry);
}

/* the zip64 extended-information extra field replaces the 0xffff.. placeholders, in this order */
static int zip64_extra(const uint8_t *x, size_t xlen, uint64_t *usize, uint64_t *csize, uint64_t *lho,
                       int need_u, int need_c, int need_o)
{
    size_t p = 0;
    while (p + 4 <= xlen) {
        unsigned id = rd16(x + p), len = rd16(x + p + 2);
        if (len > xlen - p - 4)
            return -1;
        if (id == ZIP_EXTRA_ZIP64) {
            const uint8_t *v = x + p + 4;
            size_t need = 8u * (size_t)(need_u + need_c + need_o), q = 0;
            if (len < need)
                return -1;
            if (need_u) {
                *usize = rd64(v + q);
                q += 8;
            }
            if (need_c) {
                *csize = rd64(v + q);
                q += 8;
            }
            if (need_o)
                *lho = rd64(v + q);
            return 0;
        }
        p += 4 + (size_t)len;
    }
    return need_u || need_c || need_o ? -1 : 0;
}

int catanet_zip_read(CatanetZipEntry **out, int *n_out, const uint8_t *buf, size_t size, unsigned flags,
                     char *err, size_t es)
{
    *out = NULL;
    *n_out = 0;
    if (size < ZIP_EOCD_SIZE)
        return catanet_errf(err, es, CATANET_ERR_FORMAT, "file too short (%zu bytes) for a zip archive", size);
    /* the end-of-central-directory record sits in the last 22 + 65535 (comment) bytes */
    size_t eocd = SIZE_MAX;
    size_t lowest = size - ZIP_EOCD_SIZE > ZIP_MAX_COMMENT ? size - ZIP_EOCD_SIZE - ZIP_MAX_COMMENT : 0;
    for (size_t p = size - ZIP_EOCD_SIZE + 1; p-- > lowest;)
        if (rd32(buf + p) == ZIP_EOCD_SIG && p + ZIP_EOCD_SIZE + rd16(buf + p + 20) <= size) {
            eocd = p;
            break;
        }
    if (eocd == SIZE_MAX)
        return catanet_errf(err, es, CATANET_ERR_FORMAT,
                            "no zip end-of-central-directory record: not a zip archive, or truncated");
    const uint8_t *e = buf + eocd;
    uint64_t disk = rd16(e + 4), cd_disk = rd16(e + 6), count = rd16(e + 10), cd_size = rd32(e + 12),
             cd_off = rd32(e + 16);
    if (count == 0xffff || cd_size == 0xffffffffu || cd_off == 0xffffffffu || disk == 0xffff) {
        if (eocd < ZIP64_LOCATOR_SIZE || rd32(buf + eocd - ZIP64_LOCATOR_SIZE) != ZIP64_LOCATOR_SIG)
            return catanet_errf(err, es, CATANET_ERR_FORMAT, "zip64 archive without a zip64 locator");
        uint64_t z = rd64(buf + eocd - ZIP64_LOCATOR_SIZE + 8);
        if (z > size - ZIP64_LOCATOR_SIZE || size - ZIP64_LOCATOR_SIZE - z < ZIP64_EOCD_SIZE ||
            rd32(buf + z) != ZIP64_EOCD_SIG)
            return catanet_errf(err, es, CATANET_ERR_FORMAT, "zip64 end-of-central-directory record out of the file");
        disk = rd32(buf + z + 16);
        cd_disk = rd32(buf + z + 20);
        count = rd64(buf + z + 32);
        cd_size = rd64(buf + z + 40);
        cd_off = rd64(buf + z + 48);
    }
    if (disk != 0 || cd_disk != 0)
        return catanet_errf(err, es, CATANET_ERR_UNSUPPORTED, "multi-disk zip archives are not supported");
    if (cd_off > size || cd_size > size - cd_off)
        return catanet_errf(err, es, CATANET_ERR_FORMAT,
                            "zip central directory (offset %llu, %llu bytes) beyond the %zu-byte file: truncated?",
                            (unsigned long long)cd_off, (unsigned long long)cd_size, size);
    if (count > cd_size / ZIP_CENTRAL_SIZE)
        return catanet_errf(err, es, CATANET_ERR_FORMAT, "zip claims %llu entries in a %llu-byte central directory",
                            (unsigned long long)count, (unsigned long long)cd_size);
    CatanetZipEntry *ent = malloc(sizeof(*ent) * (count ? count : 1));
    if (!ent)
        return catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
    int ret = 0;
    const uint8_t *cd = buf + cd_off;
    size_t p = 0;
    for (uint64_t i = 0; i < count; i++) {
        if (cd_size - p < ZIP_CENTRAL_SIZE || rd32(cd + p) != ZIP_CENTRAL_SIG) {
            ret = catanet_errf(err, es, CATANET_ERR_FORMAT, "zip central directory entry %llu is damaged",
                               (unsigned long long)i);
            goto fail;
        }
        const uint8_t *c = cd + p;
        unsigned gflags = rd16(c + 8), method = rd16(c + 10), nlen = rd16(c + 28), xlen = rd16(c + 30),
                 clen = rd16(c + 32), dstart = rd16(c + 34);
        uint32_t crc = rd32(c + 16);
        uint64_t csize = rd32(c + 20), usize = rd32(c + 24), lho = rd32(c + 42);
        if (cd_size - p - ZIP_CENTRAL_SIZE < (uint64_t)nlen + xlen + clen) {
            ret = catanet_errf(err, es, CATANET_ERR_FORMAT, "zip central directory entry %llu overruns the directory",
                               (unsigned long long)i);
            goto fail;
        }
        const char *name = (const char *)c + ZIP_CENTRAL_SIZE;
        int nl = (int)nlen;
        if (zip64_extra(c + ZIP_CENTRAL_SIZE + nlen, xlen, &usize, &csize, &lho, usize == 0xffffffffu,
                        csize == 0xffffffffu, lho == 0xffffffffu) < 0) {
            ret = catanet_errf(err, es, CATANET_ERR_FORMAT, "zip entry '%.*s': bad zip64 extra field", nl, name);
            goto fail;
        }
        p += ZIP_CENTRAL_SIZE + (size_t)nlen + xlen + clen;
        if (gflags & (ZIP_FLAG_ENCRYPTED | ZIP_FLAG_STRONG_ENCRYPTION)) {
            ret = catanet_errf(err, es, CATANET_ERR_UNSUPPORTED, "zip entry '%.*s' is encrypted", nl, name);
            goto fail;
        }
        if (method != 0) {
            ret = catanet_errf(err, es, CATANET_ERR_UNSUPPORTED,
                               "zip entry '%.*s' is compressed (method %u): torch.save stores entries "
                               "uncompressed; re-save the checkpoint with torch.save", nl, name, method);
            goto fail;
        }
        if (dstart != 0 && dstart != 0xffff) {
            ret = catanet_errf(err, es, CATANET_ERR_UNSUPPORTED, "zip entry '%.*s' is on another disk", nl, name);
            goto fail;
        }
        if (csize != usize) {
            ret = catanet_errf(err, es, CATANET_ERR_FORMAT, "zip entry '%.*s': stored, but sizes differ (%llu, %llu)",
                               nl, name, (unsigned long long)csize, (unsigned long long)usize);
            goto fail;
        }
        if (lho > size || size - lho < ZIP_LOCAL_SIZE || rd32(buf + lho) != ZIP_LOCAL_SIG) {
            ret = catanet_errf(err, es, CATANET_ERR_FORMAT, "zip entry '%.*s': local header missing at offset %llu",
                               nl, name, (unsigned long long)lho);
            goto fail;
        }
        const uint8_t *l = buf + lho;
        uint64_t data = lho + ZIP_LOCAL_SIZE + (uint64_t)rd16(l + 26) + rd16(l + 28);
        if (rd16(l + 26) != nlen || (size - lho - ZIP_LOCAL_SIZE >= nlen && memcmp(l + ZIP_LOCAL_SIZE, name, nlen)) ||
            rd16(l + 6) & (ZIP_FLAG_ENCRYPTED | ZIP_FLAG_STRONG_ENCRYPTION) || rd16(l + 8) != 0) {
            ret = catanet_errf(err, es, CATANET_ERR_FORMAT,
                               "zip entry '%.*s': local header disagrees with the central directory", nl, name);
            goto fail;
        }
        if (data > size || csize > size - data) {
            ret = catanet_errf(err, es, CATANET_ERR_FORMAT,
                               "zip entry '%.*s': %llu bytes at offset %llu run past the end of the file (truncated?)",
                               nl, name, (unsigned long long)csize, (unsigned long long)data);
            goto fail;
        }
        if (!(flags & CATANET_PTH_NO_CRC) && crc32_buf(buf + data, csize) != crc) {
            ret = catanet_errf(err, es, CATANET_ERR_FORMAT, "zip entry '%.*s': CRC-32 mismatch (damaged file)", nl, name);
            goto fail;
        }
        ent[i].name = name;
        ent[i].name_len = nlen;
        ent[i].data = buf + data;
        ent[i].size = csize;
    }
    qsort(ent, count, sizeof(*ent), cmp_entry);
    for (uint64_t i = 1; i < count; i++)
        if (!cmp_entry(&ent[i - 1], &ent[i])) {
            ret = catanet_errf(err, es, CATANET_ERR_FORMAT, "zip entry '%.*s' appears twice", (int)ent[i].name_len,
                               ent[i].name);
            goto fail;
        }
    *out = ent;
    *n_out = (int)count;
    return 0;
fail:
    free(ent);
    return ret;
}

/* ------------------------------------------------------------------------------------------------ */
/* zip writer                                                                                       */

/* the byte buffer the zip and pickle writers build their output in */
void catanet_pth_put(Buf *b, const void *data, size_t n)
{
    if (b->failed)
        return;
    if (b->cap - b->n < n) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->n < n) {
            if (cap > SIZE_MAX / 2) {
                b->failed = 1;
                return;
            }
            cap *= 2;
        }
        uint8_t *q = realloc(b->p, cap);
        if (!q) {
            b->failed = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->n, data, n);
    b->n += n;
}

static int write_file(const char *path, const uint8_t *data, size_t n, char *err, size_t es)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp)
        return catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
    snprintf(tmp, plen + 16, "%s.tmpXXXXXX", path);
    int fd = mkstemp(tmp), ret = 0;
    if (fd < 0) {
        ret = catanet_errf(err, es, CATANET_ERR_IO, "cannot create a temporary file beside '%s': %s", path,
                           strerror(errno));
        free(tmp);
        return ret;
    }
    const uint8_t *p = data;
    size_t left = n;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        p += w;
        left -= (size_t)w;
    }
    /* mkstemp creates 0600; a weight file is as readable as any other output */
    if (left || fchmod(fd, 0644) < 0 || fsync(fd) < 0) {
        ret = catanet_errf(err, es, CATANET_ERR_IO, "cannot write '%s': %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
    } else {
        close(fd);
        if (rename(tmp, path) < 0) {
            ret = catanet_errf(err, es, CATANET_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
            unlink(tmp);
        }
    }
    free(tmp);
    return ret;
}

int catanet_zip_write(const char *path, const CatanetZipEntry *e, int n, char *err, size_t es)
{
    Buf b = { 0 };
    uint64_t *lho = calloc(n ? n : 1, sizeof(*lho));
    uint32_t *crc = calloc(n ? n : 1, sizeof(*crc));
    int ret = 0;
    if (!lho || !crc) {
        ret = catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (n > 0xfffe) {
        ret = catanet_errf(err, es, CATANET_ERR_UNSUPPORTED, "%d zip entries: more than this writer supports", n);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        if (e[i].name_len > 0xffff || e[i].size >= 0xffffffffu || b.n >= 0xffffffffu) {
            ret = catanet_errf(err, es, CATANET_ERR_UNSUPPORTED, "zip entry too large for this writer (no zip64)");
            goto done;
        }
        lho[i] = b.n;
        crc[i] = crc32_buf(e[i].data, e[i].size);
        /* pad with an extra field so that the data starts on a 64-byte boundary, as torch does */
        size_t hdr = ZIP_LOCAL_SIZE + e[i].name_len + 4;
        size_t pad = (ZIP_ALIGN - (b.n + hdr) % ZIP_ALIGN) % ZIP_ALIGN;
        put32(&b, ZIP_LOCAL_SIG);
        put16(&b, 20);          /* version needed */
        put16(&b, 0x0800);      /* UTF-8 names */
        put16(&b, 0);           /* stored */
        put16(&b, 0);
        put16(&b, 0x21);        /* 1980-01-01 */
        put32(&b, crc[i]);
        put32(&b, (uint32_t)e[i].size);
        put32(&b, (uint32_t)e[i].size);
        put16(&b, (unsigned)e[i].name_len);
        put16(&b, (unsigned)(4 + pad));
        catanet_pth_put(&b, e[i].name, e[i].name_len);
        put16(&b, 0x4246);      /* "FB": torch's padding field id */
        put16(&b, (unsigned)pad);
        for (size_t k = 0; k < pad; k++)
            put8(&b, 'Z');
        catanet_pth_put(&b, e[i].data, (size_t)e[i].size);
    }
    uint64_t cd_off = b.n;
    for (int i = 0; i < n; i++) {
        put32(&b, ZIP_CENTRAL_SIG);
        put16(&b, 20);
        put16(&b, 20);
        put16(&b, 0x0800);
        put16(&b, 0);
        put16(&b, 0);
        put16(&b, 0x21);
        put32(&b, crc[i]);
        put32(&b, (uint32_t)e[i].size);
        put32(&b, (uint32_t)e[i].size);
        put16(&b, (unsigned)e[i].name_len);
        put16(&b, 0);
        put16(&b, 0);
        put16(&b, 0);
        put16(&b, 0);
        put32(&b, 0);
        put32(&b, (uint32_t)lho[i]);
        catanet_pth_put(&b, e[i].name, e[i].name_len);
    }
    uint64_t cd_size = b.n - cd_off;
    if (b.n >= 0xffffffffu) {
        ret = catanet_errf(err, es, CATANET_ERR_UNSUPPORTED, "zip archive too large for this writer (no zip64)");
        goto done;
    }
    put32(&b, ZIP_EOCD_SIG);
    put16(&b, 0);
    put16(&b, 0);
    put16(&b, (unsigned)n);
    put16(&b, (unsigned)n);
    put32(&b, (uint32_t)cd_size);
    put32(&b, (uint32_t)cd_off);
    put16(&b, 0);
    if (b.failed) {
        ret = catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
        goto done;
    }
    ret = write_file(path, b.p, b.n, err, es);
done:
    free(b.p);
    free(lho);
    free(crc);
    return ret;
}

