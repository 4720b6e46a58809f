//! [`section!`]: every key of a config section declared once.

/// Declares a config section (or the top level): its struct and, for each key, in one place, its
/// doc comment, Rust type, default, and how it is read and checked.
///
/// ```text
/// section! {
///     /// What the section is.
///     pub struct FooConfig {
///         required {
///             /// A key with no default: "missing required key" when absent.
///             url: String => url,
///         }
///         /// A key with a default.
///         max_things: u32 = 3 => int(1, Some(10)),
///     }
///     check = check_foo;
/// }
/// ```
///
/// Generates:
/// - the struct, every key a `pub` field with its doc comment and attributes, deriving `Debug`,
///   `Clone`, `PartialEq` and `Serialize` (what `--dump-config` writes);
/// - `Default` when the section has no required keys, else `new`, taking the required keys;
/// - its [`Section`](crate::read::Section) impl: the key list, each key's TOML kind given by its
///   Rust type ([`Field`](crate::read::Field)), and the reader, which reads the keys in order, each
///   with `=> method(args)`, a call of `Reader::method(key, args)` answering `Option<T>` (`None`
///   when absent or invalid, the error recorded); an invalid key keeps its default, a missing
///   required key is an error; then the optional `check` (cross-key rules) runs.
///
/// The struct cannot gain a key the reader does not know, nor the reader one the struct lacks.
macro_rules! section {
    (
        $(#[$attr:meta])*
        pub struct $name:ident {
            required {
                $(
                    $(#[$rattr:meta])*
                    $req:ident: $rty:ty => $rread:ident $(($($rarg:expr),* $(,)?))?
                ),* $(,)?
            }
            $(
                $(#[$fattr:meta])*
                $field:ident: $ty:ty = $default:expr => $read:ident $(($($arg:expr),* $(,)?))?
            ),* $(,)?
        }
        $(check = $check:path;)?
    ) => {
        section!(@impl
            [$(#[$attr])*] $name
            [$($(#[$rattr])* $req: $rty => $rread $(($($rarg),*))?,)*]
            [$($(#[$fattr])* $field: $ty = $default => $read $(($($arg),*))?,)*]
            [$($check)?]
        );

        impl $name {
            #[doc = concat!("A `", stringify!($name), "` with the given required keys, every other key at its default.")]
            pub fn new($($req: impl Into<$rty>),*) -> Self {
                Self { $($req: $req.into(),)* $($field: $default,)* }
            }
        }
    };
    (
        $(#[$attr:meta])*
        pub struct $name:ident {
            $(
                $(#[$fattr:meta])*
                $field:ident: $ty:ty = $default:expr => $read:ident $(($($arg:expr),* $(,)?))?
            ),* $(,)?
        }
        $(check = $check:path;)?
    ) => {
        section!(@impl
            [$(#[$attr])*] $name
            []
            [$($(#[$fattr])* $field: $ty = $default => $read $(($($arg),*))?,)*]
            [$($check)?]
        );

        impl Default for $name {
            fn default() -> Self {
                Self { $($field: $default,)* }
            }
        }
    };
    (@impl
        [$(#[$attr:meta])*] $name:ident
        [$($(#[$rattr:meta])* $req:ident: $rty:ty => $rread:ident $(($($rarg:expr),*))?,)*]
        [$($(#[$fattr:meta])* $field:ident: $ty:ty = $default:expr => $read:ident $(($($arg:expr),*))?,)*]
        [$($check:path)?]
    ) => {
        $(#[$attr])*
        #[derive(Debug, Clone, PartialEq, serde::Serialize)]
        pub struct $name {
            $($(#[$rattr])* pub $req: $rty,)*
            $($(#[$fattr])* pub $field: $ty,)*
        }

        impl crate::read::Section for $name {
            const KEYS: crate::read::Keys = &[
                $((stringify!($req), <$rty as crate::read::Field>::KIND),)*
                $((stringify!($field), <$ty as crate::read::Field>::KIND),)*
            ];

            fn read(r: &mut crate::read::Reader<'_>) -> Self {
                let section = Self {
                    $($req: {
                        let value = r.$rread(stringify!($req) $($(, $rarg)*)?);
                        r.required(stringify!($req), value)
                    },)*
                    $($field: <$ty as crate::read::Field>::fill(r.$read(stringify!($field) $($(, $arg)*)?), $default),)*
                };
                $($check(&section, r);)?
                section
            }
        }

        impl crate::read::Field for $name {
            type Item = Self;
            const KIND: crate::read::Kind = crate::read::Kind::Section(<Self as crate::read::Section>::KEYS);

            fn fill(read: Option<Self>, default: Self) -> Self {
                read.unwrap_or(default)
            }
        }
    };
}
