/*
 * Storage helpers that do not depend on a backend: closing a store of any
 * kind and releasing the blobs records carry. Blobs are ciphertext and
 * wrapped keys only, but they are still wiped before free so that no copy
 * of a destroyed version lingers in freed heap. explicit_bzero keeps this
 * module free of the crypto module (the store links without libsodium).
 */
#include <stdlib.h>
#include <string.h>

#include "secretfs/store.h"

void sfs_store_close(struct sfs_store *s)
{
	if (s)
		s->ops->close(s);
}

void sfs_blob_release(struct sfs_blob *b)
{
	if (!b)
		return;
	if (b->data) {
		explicit_bzero(b->data, b->len);
		free(b->data);
	}
	b->data = NULL;
	b->len = 0;
}

void sfs_version_rec_release(struct sfs_version_rec *v)
{
	if (!v)
		return;
	sfs_blob_release(&v->wrapped_dek);
	sfs_blob_release(&v->ciphertext);
}
