//! [`params!`](crate::params!): a stage's parameters declared once.
//!
//! A parameter used to be written in up to ten places (struct field,
//! `Default`, range constant, range check, manifest spec). With the macro,
//! each field is one line: name, type, default, kind with its range or
//! choices, and the manifest's doc. The macro produces the serde struct
//! (`deny_unknown_fields, default`), `Default`, and the
//! [`StageParams`](crate::params::StageParams) impl (the manifest's specs,
//! the range checks and the checked parse).
//!
//! ```ignore
//! jupiter_plugin_api::params! {
//!     /// Parameters of `gamma`.
//!     #[derive(Debug, Clone, PartialEq)]
//!     pub struct GammaParams {
//!         /// The gamma (> 0); 1 leaves the image unchanged.
//!         pub gamma: f32 = 1.0, float(0.05, 10.0), "out = in^(1/gamma)";
//!     }
//! }
//! ```
//!
//! Kinds (each a module of [`kinds`] with a `spec` and a `check`):
//! `float(lo, hi)` and `int(lo, hi)` (inclusive ranges, compared in the
//! field's own type), `int_or_zero(lo, hi)` and `float_or_zero(lo, hi)` (0 or `lo ..= hi`),
//! `float_list(lo, hi)` (every entry), `choice(names)` (a `String` checked
//! against `names`, or an enum that deserializes itself), `bool` and `text`.
//! The crate using the macro needs `serde` among its dependencies.

/// Declares a stage's parameter struct once; see [the module](crate::declare).
#[macro_export]
macro_rules! params {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                $fvis:vis $field:ident : $ty:ty = $default:expr,
                    $kind:ident $(( $($arg:expr),* ))?, $doc:literal;
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(::serde::Deserialize)]
        #[serde(deny_unknown_fields, default)]
        $vis struct $name {
            $( $(#[$fmeta])* $fvis $field: $ty, )*
        }

        impl ::core::default::Default for $name {
            fn default() -> Self {
                $name { $( $field: $default, )* }
            }
        }

        impl $crate::params::StageParams for $name {
            fn specs() -> ::std::vec::Vec<$crate::ParamSpec> {
                let d = <$name as ::core::default::Default>::default();
                ::std::vec![$(
                    $crate::declare::kinds::$kind::spec(
                        stringify!($field), &d.$field $(, $($arg),*)?, $doc,
                    ),
                )*]
            }
            fn check_ranges(&self) -> ::core::result::Result<(), $crate::StageError> {
                $(
                    $crate::declare::kinds::$kind::check(
                        stringify!($field), &self.$field $(, $($arg),*)?
                    )?;
                )*
                ::core::result::Result::Ok(())
            }
        }
    };
}

/// The parameter kinds [`params!`](crate::params!) knows: for each, the
/// manifest spec built with the public [`ParamSpec`] constructors (so the
/// manifest text is what a hand-written spec gives) and the range check.
#[doc(hidden)]
pub mod kinds {
    use std::fmt::Display;

    use crate::error::StageError;
    use crate::params::{ChoiceValue, ParamSpec};

    /// `lo <= v <= hi` (NaN is refused), else an `InvalidParams` error
    /// naming the key and the range.
    fn within<T: PartialOrd + Display>(name: &str, v: &T, lo: T, hi: T) -> Result<(), StageError> {
        if *v >= lo && *v <= hi {
            Ok(())
        } else {
            Err(StageError::invalid_params(format!(
                "`{name}` must be within {lo} ..= {hi} (got {v})"
            )))
        }
    }

    /// A float in `lo ..= hi`.
    pub mod float {
        use super::*;
        pub fn spec<T: Into<f64> + Copy>(name: &str, d: &T, lo: T, hi: T, doc: &str) -> ParamSpec {
            ParamSpec::float(name, (*d).into(), lo.into(), hi.into(), doc)
        }
        pub fn check<T: PartialOrd + Display>(
            name: &str,
            v: &T,
            lo: T,
            hi: T,
        ) -> Result<(), StageError> {
            within(name, v, lo, hi)
        }
    }

    /// An integer in `lo ..= hi`.
    pub mod int {
        pub use super::float::check;
        use super::*;
        pub fn spec<T: Into<i64> + Copy>(name: &str, d: &T, lo: T, hi: T, doc: &str) -> ParamSpec {
            ParamSpec::int(name, (*d).into(), lo.into(), hi.into(), doc)
        }
    }

    /// An integer that is 0 (automatic) or in `lo ..= hi`; the manifest
    /// shows `0 ..= hi`.
    pub mod int_or_zero {
        use super::*;
        pub fn spec<T: Into<i64> + Copy>(name: &str, d: &T, _lo: T, hi: T, doc: &str) -> ParamSpec {
            ParamSpec::int(name, (*d).into(), 0, hi.into(), doc)
        }
        pub fn check<T: PartialOrd + Display + Default>(
            name: &str,
            v: &T,
            lo: T,
            hi: T,
        ) -> Result<(), StageError> {
            if *v == T::default() || (*v >= lo && *v <= hi) {
                Ok(())
            } else {
                Err(StageError::invalid_params(format!(
                    "`{name}` must be 0 or within {lo} ..= {hi} (got {v})"
                )))
            }
        }
    }

    /// A float that is 0 (automatic) or in `lo ..= hi`; the manifest
    /// shows `0 ..= hi`.
    pub mod float_or_zero {
        pub use super::int_or_zero::check;
        use super::*;
        pub fn spec<T: Into<f64> + Copy>(name: &str, d: &T, _lo: T, hi: T, doc: &str) -> ParamSpec {
            ParamSpec::float(name, (*d).into(), 0.0, hi.into(), doc)
        }
    }

    /// A list of floats, each in `lo ..= hi`.
    pub mod float_list {
        use super::*;
        pub fn spec<T: Into<f64> + Copy>(
            name: &str,
            d: &[T],
            lo: T,
            hi: T,
            doc: &str,
        ) -> ParamSpec {
            let d: Vec<f64> = d.iter().map(|&v| v.into()).collect();
            ParamSpec::float_list(name, &d, lo.into(), hi.into(), doc)
        }
        pub fn check<T: PartialOrd + Display + Copy>(
            name: &str,
            v: &[T],
            lo: T,
            hi: T,
        ) -> Result<(), StageError> {
            for (i, x) in v.iter().enumerate() {
                if !(*x >= lo && *x <= hi) {
                    return Err(StageError::invalid_params(format!(
                        "`{name}` entry {i} (number {}) must be within {lo} ..= {hi} (got {x})",
                        i + 1
                    )));
                }
            }
            Ok(())
        }
    }

    /// One of a fixed list of names.
    pub mod choice {
        use super::*;
        pub fn spec<T: ChoiceValue>(name: &str, d: &T, names: &[&str], doc: &str) -> ParamSpec {
            ParamSpec::choice(name, d.choice_name(), names, doc)
        }
        pub fn check<T: ChoiceValue>(name: &str, v: &T, names: &[&str]) -> Result<(), StageError> {
            if names.contains(&v.choice_name()) {
                Ok(())
            } else {
                Err(StageError::invalid_params(format!(
                    "`{name}` must be one of {} (got '{}')",
                    names.join(", "),
                    v.choice_name()
                )))
            }
        }
    }

    /// A boolean.
    pub mod bool {
        use super::*;
        use core::primitive::bool;
        pub fn spec(name: &str, d: &bool, doc: &str) -> ParamSpec {
            ParamSpec::bool(name, *d, doc)
        }
        pub fn check(_name: &str, _v: &bool) -> Result<(), StageError> {
            Ok(())
        }
    }

    /// Free text.
    pub mod text {
        use super::*;
        pub fn spec(name: &str, d: &str, doc: &str) -> ParamSpec {
            ParamSpec::text(name, d, doc)
        }
        pub fn check(_name: &str, _v: &str) -> Result<(), StageError> {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::params::{Interpolation, StageParams};
    use crate::{ErrorKind, ParamSpec};

    crate::params! {
        /// A declaration exercising every kind.
        #[derive(Debug, Clone, PartialEq)]
        pub struct Demo {
            /// A float.
            pub amount: f32 = 0.7, float(0.0, 20.0), "Amount";
            pub layers: u32 = 6, int(1, 10), "Layers";
            pub size: u32 = 0, int_or_zero(16, 512), "Size (0 = auto)";
            pub gains: Vec<f32> = vec![3.0, 1.0], float_list(0.0, 20.0), "Gains";
            pub mode: String = "clip".into(), choice(&["clip", "winsorize"]), "Mode";
            pub interpolation: Interpolation = Interpolation::Bicubic, choice(Interpolation::ALL), "Resampling";
            pub on: bool = true, bool, "On";
            pub label: String = "x".into(), text, "Label";
        }
    }

    #[test]
    fn specs_equal_the_hand_written_ones() {
        let want = vec![
            ParamSpec::float("amount", 0.7f32 as f64, 0.0, 20.0, "Amount"),
            ParamSpec::int("layers", 6, 1, 10, "Layers"),
            ParamSpec::int("size", 0, 0, 512, "Size (0 = auto)"),
            ParamSpec::float_list("gains", &[3.0, 1.0], 0.0, 20.0, "Gains"),
            ParamSpec::choice("mode", "clip", &["clip", "winsorize"], "Mode"),
            ParamSpec::choice(
                "interpolation",
                "bicubic",
                &["bicubic-sharp", "bicubic", "bilinear"],
                "Resampling",
            ),
            ParamSpec::bool("on", true, "On"),
            ParamSpec::text("label", "x", "Label"),
        ];
        assert_eq!(Demo::specs(), want);
    }

    #[test]
    fn parse_checks_every_range_and_names_the_key() {
        assert_eq!(Demo::parse("").unwrap(), Demo::default());
        let p = Demo::parse(r#"{"size": 16, "interpolation": "bilinear"}"#).unwrap();
        assert_eq!((p.size, p.interpolation), (16, Interpolation::Bilinear));
        for (json, key) in [
            (r#"{"amount": 21}"#, "amount"),
            (r#"{"amount": -0.1}"#, "amount"),
            (r#"{"layers": 0}"#, "layers"),
            (r#"{"size": 8}"#, "size"),
            (r#"{"gains": [1, 25]}"#, "gains"),
            (r#"{"mode": "median"}"#, "mode"),
            (r#"{"interpolation": "nearest"}"#, "interpolation"),
            (r#"{"bogus": 1}"#, "bogus"),
        ] {
            let e = Demo::parse(json).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidParams, "{json}");
            assert!(e.message.contains(key), "{json}: {}", e.message);
        }
    }
}
