//! The torch.save records inside the zip: `<prefix>/data.pkl`, the storages
//! `<prefix>/data/<key>` that its tensors point into, and
//! `<prefix>/byteorder`.

use super::error::ImportError;
use super::pickle::TensorRef;
use super::zip::{Archive, Entry};

/// A torch.save archive: its prefix (the folder every record is in,
/// `archive` for a buffer) and its records.
pub struct Checkpoint<'a> {
    archive: &'a Archive<'a>,
    prefix: &'a str,
    pickle: Entry<'a>,
}

fn zip_error(entry: &str, offset: u64, detail: impl Into<String>) -> ImportError {
    ImportError::Zip {
        entry: Some(entry.to_owned()),
        offset,
        detail: detail.into(),
    }
}

impl<'a> Checkpoint<'a> {
    /// Finds the one `<prefix>/data.pkl` and checks the byte order.
    pub fn open(archive: &'a Archive<'a>) -> Result<Self, ImportError> {
        let mut pickles = archive.entries().iter().filter(|e| {
            e.name
                .strip_suffix("/data.pkl")
                .is_some_and(|prefix| !prefix.is_empty() && !prefix.contains('/'))
        });
        let (Some(pickle), None) = (pickles.next(), pickles.next()) else {
            let found = archive
                .entries()
                .iter()
                .filter(|e| e.name.ends_with("/data.pkl"))
                .count();
            return Err(ImportError::Zip {
                entry: None,
                offset: 0,
                detail: format!(
                    "{found} records named <prefix>/data.pkl (a torch.save archive has exactly one)"
                ),
            });
        };
        let prefix = pickle.name.strip_suffix("/data.pkl").unwrap_or(pickle.name);
        let byteorder = format!("{prefix}/byteorder");
        // Absent before PyTorch 1.10, which only wrote little-endian.
        if let Some(entry) = archive.get(&byteorder) {
            if entry.data != b"little" {
                return Err(zip_error(
                    &byteorder,
                    entry.offset,
                    format!(
                        "byte order {:?}: only little-endian archives are read",
                        String::from_utf8_lossy(entry.data)
                    ),
                ));
            }
        }
        Ok(Checkpoint {
            archive,
            prefix,
            pickle: *pickle,
        })
    }

    pub fn pickle_name(&self) -> &'a str {
        self.pickle.name
    }

    pub fn pickle_bytes(&self) -> &'a [u8] {
        self.pickle.data
    }

    /// The bytes of `tensor`: its elements in its storage record, which must
    /// hold exactly the storage's declared `numel` elements.
    pub fn tensor_bytes(&self, tensor: &TensorRef) -> Result<&'a [u8], ImportError> {
        let storage = &tensor.storage;
        let name = format!("{}/data/{}", self.prefix, storage.key);
        let entry = self.archive.get(&name).ok_or_else(|| {
            zip_error(
                &name,
                0,
                "the pickle refers to this storage record, which is missing",
            )
        })?;
        let size = storage.dtype.size() as u64;
        let declared = storage.numel.checked_mul(size);
        if declared != Some(entry.data.len() as u64) {
            return Err(zip_error(
                &name,
                entry.offset,
                format!(
                    "{} bytes, but the pickle declares {} {} elements",
                    entry.data.len(),
                    storage.numel,
                    storage.dtype.name()
                ),
            ));
        }
        // offset + elements <= numel was checked when the tensor was built
        // and numel * size is the record's length; checked all the same.
        let bytes_of = |elements: u64| {
            elements
                .checked_mul(size)
                .and_then(|b| usize::try_from(b).ok())
        };
        bytes_of(tensor.offset)
            .zip(bytes_of(tensor.elements()))
            .and_then(|(start, len)| entry.data.get(start..start.checked_add(len)?))
            .ok_or_else(|| zip_error(&name, entry.offset, "the tensor overruns its storage"))
    }
}
