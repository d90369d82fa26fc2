//! A macro that declares an ABI number as a Rust enum with Xen's names.
//!
//! Every list of numbers that a dispatcher matches on (hypercalls, sub-ops,
//! reasons) has the same shape: a `#[repr]` enum, a `TryFrom` from the raw
//! integer, and Xen's spelling of each name for logs. Writing that by hand a
//! dozen times invites typos in exactly the place a learner would not look,
//! so [`abi_enum!`] writes it once.

/// Declares a `#[repr($repr)]` enum for an ABI number space.
///
/// Each variant is written `Variant = number => "xen_name",` and the macro
/// adds:
/// - derives for `Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord`;
/// - `ALL`: every variant, in the order written;
/// - `name()`: Xen's spelling of the name, for logs;
/// - `raw()`: the number;
/// - `from_raw()` (const) and `from_register()` (from a 64-bit register,
///   rejecting values that do not fit in `$repr`);
/// - `TryFrom<$repr>` with [`crate::UnknownValue`] as the error;
/// - `Display`, which prints `name()`.
macro_rules! abi_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident : $repr:ident {
            $(
                $(#[$variant_meta:meta])*
                $variant:ident = $value:literal => $text:literal,
            )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr($repr)]
        $vis enum $name {
            $(
                $(#[$variant_meta])*
                $variant = $value,
            )+
        }

        impl $name {
            /// Every value, in the order the ABI lists them.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// Xen's name for this value, as spelled in its public headers.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }

            /// The number that travels in registers and memory.
            pub const fn raw(self) -> $repr {
                self as $repr
            }

            /// Decodes a number, or returns `None` if the ABI does not define it.
            pub const fn from_raw(raw: $repr) -> Option<Self> {
                match raw {
                    $($value => Some(Self::$variant),)+
                    _ => None,
                }
            }

            /// Decodes a number taken from a 64-bit register. Values that do not
            /// fit the ABI's integer width are unknown, not truncated.
            #[allow(
                clippy::useless_conversion,
                reason = "the macro also expands for u64-sized enums, where the conversion is a no-op"
            )]
            pub fn from_register(raw: u64) -> Option<Self> {
                match <$repr>::try_from(raw) {
                    Ok(narrow) => Self::from_raw(narrow),
                    Err(_) => None,
                }
            }
        }

        impl TryFrom<$repr> for $name {
            type Error = $crate::error::UnknownValue;

            #[allow(
                clippy::useless_conversion,
                reason = "the macro also expands for u64-sized enums, where the conversion is a no-op"
            )]
            fn try_from(raw: $repr) -> Result<Self, Self::Error> {
                Self::from_raw(raw).ok_or($crate::error::UnknownValue(u64::from(raw)))
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                formatter.write_str(self.name())
            }
        }
    };
}
