/*
 * The domain records and their limits: what a KMS key, a secret and a
 * version are, as the core hands them to a store backend and the fronts
 * render them. Plain data, no behaviour besides releasing the blobs a
 * record owns (store.c).
 */
#ifndef SECRETFS_RECORDS_H
#define SECRETFS_RECORDS_H

#include <stddef.h>
#include <stdint.h>

#define SFS_NAME_MAX 128
#define SFS_DESC_MAX 1024
#define SFS_VALUE_MAX 65536
#define SFS_ALLOWED_MAX 2047   /* bytes of the allowed_principals list */
#define SFS_PRINCIPAL_MAX 96   /* "uid:4294967295(some-long-user-name)" */
#define SFS_ID_MAX 36          /* UUID text */

/* Entries of an allow list: "uid:N," or "gid:N," take 6 bytes at least. */
#define SFS_ALLOW_ENTRIES_MAX ((SFS_ALLOWED_MAX + 1) / 6)

enum sfs_principal_kind { SFS_PRINCIPAL_UID = 0, SFS_PRINCIPAL_GID = 1 };

/* One entry of an allow list, parsed (sfs_principal_list_parse). */
struct sfs_principal_id {
	uint32_t id;
	unsigned char kind; /* enum sfs_principal_kind */
};

enum sfs_state { SFS_STATE_ACTIVE = 0, SFS_STATE_DEACTIVATED = 1,
		 SFS_STATE_DESTROYED = 2 };
enum sfs_key_type { SFS_KEY_SERVICE = 0, SFS_KEY_USER = 1 };
enum sfs_format { SFS_FMT_TEXT = 0, SFS_FMT_JSON = 1, SFS_FMT_KV = 2 };

/* Heap bytes owned by whoever holds the struct; see sfs_blob_release. */
struct sfs_blob {
	unsigned char *data;
	size_t len;
};

/* Wipe and free b->data; leaves b empty. */
void sfs_blob_release(struct sfs_blob *b);

/* Times are nanoseconds since the Unix epoch, UTC. */
struct sfs_key_rec {
	char id[SFS_ID_MAX + 1];
	char name[SFS_NAME_MAX + 1];
	int type;  /* enum sfs_key_type */
	int state; /* SFS_STATE_ACTIVE or SFS_STATE_DEACTIVATED */
	char description[SFS_DESC_MAX + 1];
	int64_t created_at;
	char created_by[SFS_PRINCIPAL_MAX + 1];
	uint32_t current_version; /* newest key version, >= 1 */
};

struct sfs_secret_rec {
	char id[SFS_ID_MAX + 1];
	char name[SFS_NAME_MAX + 1];
	char description[SFS_DESC_MAX + 1];
	int status;                    /* SFS_STATE_ACTIVE / _DEACTIVATED */
	int access_control;            /* 1 enabled, 0 disabled */
	char allowed[SFS_ALLOWED_MAX + 1]; /* "uid:1,gid:2", normalised */
	/* allowed, parsed once when the record is loaded or the list set
	 * (sfs_principal_rec_set): what the policy matches */
	struct sfs_principal_id allow[SFS_ALLOW_ENTRIES_MAX];
	unsigned nallow;
	uint32_t owner, group, mode;   /* mode: permission bits only */
	uint32_t default_version;      /* 0: none */
	uint32_t latest_version;       /* highest number ever used, 0: none */
	char kms_key_id[SFS_ID_MAX + 1];
	int64_t created_at;
	char created_by[SFS_PRINCIPAL_MAX + 1];
	int64_t changed_at;            /* last change of any field or version */
};

struct sfs_version_rec {
	char secret_id[SFS_ID_MAX + 1];
	uint32_t version;
	int state; /* enum sfs_state */
	int64_t created_at;
	char created_by[SFS_PRINCIPAL_MAX + 1];
	char kms_key_id[SFS_ID_MAX + 1];
	uint32_t kms_key_version;
	uint32_t size;  /* plaintext bytes */
	int format;     /* enum sfs_format */
	/* Filled only when asked for (version_get with_blobs); empty once
	 * destroyed. */
	struct sfs_blob wrapped_dek;
	struct sfs_blob ciphertext;
};

/* Release the blobs held by a version record. */
void sfs_version_rec_release(struct sfs_version_rec *v);

#endif
