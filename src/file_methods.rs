//! The file-level methods every handle type has (channels and images share one file
//! type underneath, [`crate::store`]), written once.

/// Inherent methods over `self.store` for a handle type.
macro_rules! file_methods {
    () => {
        /// Make every commit durable (fsync). Read-only handles: no-op.
        ///
        /// # Errors
        /// I/O errors, which poison the handle; [`Error::Poisoned`](crate::Error::Poisoned).
        pub fn sync(&self) -> crate::Result {
            self.store.sync()
        }

        /// Choose when commits become durable (default
        /// [`Durability::OnSync`](crate::Durability::OnSync)).
        ///
        /// # Errors
        /// [`Error::ReadOnly`](crate::Error::ReadOnly).
        pub fn set_durability(&self, durability: crate::Durability) -> crate::Result {
            self.store.set_durability(durability)
        }

        /// Move a read-only handle to the newest commit of the file (following a
        /// compaction to its new file); returns whether it changed. A read-write handle
        /// always has the newest commit; a handle opened with `open_snapshot` stays on
        /// its commit (returns `false`).
        ///
        /// # Errors
        /// I/O errors.
        pub fn refresh(&self) -> crate::Result<bool> {
            self.store.refresh()
        }

        /// Check every record of the file's current commit: all checksums, blosc2 headers
        /// against the geometry, and that no two records overlap.
        ///
        /// # Errors
        /// I/O errors; problems found are listed in the result, not returned as errors.
        pub fn verify(&self) -> crate::Result<crate::Verification> {
            self.verify_with_progress(&crate::NoProgress)
        }

        /// [`verify`](Self::verify), reporting to `progress` the bytes whose checksum is
        /// computed (the catalog, metadata and tables at once, then chunk by chunk).
        ///
        /// # Errors
        /// As [`verify`](Self::verify); [`Error::Cancelled`](crate::Error::Cancelled) when
        /// `progress` cancels (the file is only read).
        pub fn verify_with_progress(
            &self,
            progress: &dyn crate::Progress,
        ) -> crate::Result<crate::Verification> {
            crate::chunk_codec::verify(&self.store, progress)
        }

        /// Rewrite the file without dead space: the live records go to a new file in the
        /// same directory, which is synced and renamed over the old one (never truncated in
        /// place). Handles of this process continue on the new file at once; read-only
        /// handles in other processes keep their snapshot of the old file and move to the
        /// new one on `refresh`.
        ///
        /// # Errors
        /// [`Error::ReadOnly`](crate::Error::ReadOnly), [`Error::Poisoned`](crate::Error::Poisoned),
        /// [`Error::BatchInProgress`](crate::Error::BatchInProgress); I/O errors (the old
        /// file is then untouched).
        pub fn compact(&self) -> crate::Result<crate::Compaction> {
            self.compact_with_progress(&crate::NoProgress)
        }

        /// [`compact`](Self::compact), reporting to `progress` the bytes of compressed
        /// chunks copied. Cancelled, it leaves the file and this handle as they were and
        /// removes its temporary file.
        ///
        /// # Errors
        /// As [`compact`](Self::compact); [`Error::Cancelled`](crate::Error::Cancelled) when
        /// `progress` cancels.
        pub fn compact_with_progress(
            &self,
            progress: &dyn crate::Progress,
        ) -> crate::Result<crate::Compaction> {
            self.store.compact(progress)
        }

        /// Compact automatically after a commit once the given threshold of dead space is
        /// reached (`None` turns it off). Named files start with it off; anonymous
        /// handles with [`AutoCompact::ANONYMOUS`](crate::AutoCompact::ANONYMOUS), which
        /// keeps a loop of edits from growing them without bound.
        ///
        /// # Errors
        /// [`Error::ReadOnly`](crate::Error::ReadOnly).
        pub fn set_auto_compact(&self, auto: Option<crate::AutoCompact>) -> crate::Result {
            self.store.set_auto_compact(auto)
        }

        /// Choose when reads verify a chunk's CRC-32: on the first read of each chunk
        /// through this handle (the default) or on every read. [`verify`](Self::verify)
        /// always checks everything.
        pub fn set_checksum_policy(&self, policy: crate::ChecksumPolicy) {
            self.store.set_checksum_policy(policy)
        }

        /// When reads verify a chunk's CRC-32 (see
        /// [`set_checksum_policy`](Self::set_checksum_policy)).
        pub fn checksum_policy(&self) -> crate::ChecksumPolicy {
            self.store.checksum_policy()
        }

        /// The generation of the commit this handle currently sees. Every commit increases
        /// it, and so may a `sync` after commits: it writes a durability marker of the same
        /// commit with the next generation, which the writer's handles move to. A read-only
        /// handle's generation changes only when [`refresh`](Self::refresh) reports a new
        /// commit (it does not move to a marker), so two handles showing the same commit
        /// may differ by one.
        pub fn generation(&self) -> u64 {
            self.store.snapshot().slot.generation
        }

        /// The name of the commit this handle currently reads, to open exactly that commit
        /// again with `open_snapshot` (in this or another process) while the writer goes
        /// on committing; see [`SnapshotId`](crate::SnapshotId).
        pub fn snapshot_id(&self) -> crate::SnapshotId {
            crate::SnapshotId::of(&self.store.snapshot().slot)
        }

        /// Whether this handle was opened with `open_snapshot`: read-only, on one commit it
        /// never moves from.
        pub fn is_pinned(&self) -> bool {
            self.store.is_pinned()
        }

        /// Space accounting of the file.
        ///
        /// # Errors
        /// I/O errors.
        pub fn stats(&self) -> crate::Result<crate::Stats> {
            self.store.stats()
        }

        /// Whether this handle can write (opened read-write, or created).
        pub fn is_writable(&self) -> bool {
            self.store.is_writable()
        }

        /// The file's path; `None` for an anonymous file (see
        /// [`AnonymousBacking`](crate::AnonymousBacking)).
        pub fn path(&self) -> Option<&std::path::Path> {
            self.store.path()
        }

        /// Where an anonymous file keeps its bytes (see
        /// [`AnonymousBacking`](crate::AnonymousBacking)); `None` for a named file.
        pub fn anonymous_backing(&self) -> Option<crate::AnonymousBacking> {
            self.store.anonymous_backing()
        }

        /// Give an anonymous file (shared by every handle of it) another
        /// [`AnonymousBacking`](crate::AnonymousBacking). If its bytes do not belong where
        /// they are under the new backing, they move now: `TempFile` moves them out of
        /// memory at once, `Memory` (and `Auto` while they fit) into memory; a store already
        /// in a temporary file stays in it. Handles keep working throughout; reads running
        /// in other threads finish on the old file.
        ///
        /// # Errors
        /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) for a named file;
        /// [`Error::TempFile`](crate::Error::TempFile) when the temporary file cannot be
        /// made or filled (nothing changed then);
        /// [`Error::BatchInProgress`](crate::Error::BatchInProgress),
        /// [`Error::Poisoned`](crate::Error::Poisoned); I/O errors.
        pub fn set_anonymous_backing(&self, backing: crate::AnonymousBacking) -> crate::Result {
            self.store.set_anonymous_backing(backing)
        }
    };
}

pub(crate) use file_methods;
