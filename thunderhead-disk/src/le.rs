//! Little-endian integers stored as byte arrays. They have alignment 1, so a `#[repr(C)]`
//! struct of them can be viewed in place over any byte offset of a page with bytemuck,
//! and the on-disk format is the same on every host.

use bytemuck::{Pod, Zeroable};

macro_rules! little_endian {
    ($name:ident, $int:ty, $bytes:expr) => {
        #[doc = concat!("A little-endian `", stringify!($int), "` with alignment 1.")]
        #[derive(Clone, Copy, PartialEq, Eq, Default, Pod, Zeroable)]
        #[repr(transparent)]
        pub struct $name([u8; $bytes]);

        impl $name {
            /// Stores `value`.
            pub const fn new(value: $int) -> Self {
                Self(value.to_le_bytes())
            }
            /// Loads the value.
            pub const fn get(self) -> $int {
                <$int>::from_le_bytes(self.0)
            }
        }

        impl From<$int> for $name {
            fn from(value: $int) -> Self {
                Self::new(value)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.get().fmt(f)
            }
        }
    };
}

little_endian!(Le16, u16, 2);
little_endian!(Le32, u32, 4);
little_endian!(Le64, u64, 8);
