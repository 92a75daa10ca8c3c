//! Deserializing one section out of a document: a `serde` seed that picks one key of the
//! top-level map and skips the others without building them.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use super::Format;
#[cfg(not(all(feature = "toml", feature = "yaml")))]
use super::errors::disabled_error;
#[cfg(feature = "toml")]
use super::errors::toml_error;
#[cfg(feature = "yaml")]
use super::errors::yaml_error;
use super::errors::{RawError, json_error};

/// Picks the value of key `name` out of a map, ignoring the other keys.
struct Pick<'a, T> {
    name: &'a str,
    output: PhantomData<T>,
}

impl<'de, T: DeserializeOwned> DeserializeSeed<'de> for Pick<'_, T> {
    type Value = Option<T>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Option<T>, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, T: DeserializeOwned> Visitor<'de> for Pick<'_, T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a table of sections")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<T>, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<KeyName>()? {
            if key.0 == self.name && found.is_none() {
                found = Some(map.next_value::<T>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// A map key as text, whatever scalar it was written as.
struct KeyName(String);

impl<'de> serde::Deserialize<'de> for KeyName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = KeyName;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a section name")
            }
            fn visit_str<E>(self, v: &str) -> Result<KeyName, E> {
                Ok(KeyName(v.to_owned()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<KeyName, E> {
                Ok(KeyName(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<KeyName, E> {
                Ok(KeyName(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<KeyName, E> {
                Ok(KeyName(v.to_string()))
            }
        }
        deserializer.deserialize_any(KeyVisitor)
    }
}

/// Parses `text` (a whole document, or the regions of one section) and picks section `name`.
pub(super) fn pick<T: DeserializeOwned>(
    format: Format,
    text: &str,
    name: &str,
) -> Result<Option<T>, RawError> {
    let seed = Pick::<T> {
        name,
        output: PhantomData,
    };
    let mut track = serde_path_to_error::Track::new();
    match format {
        #[cfg(feature = "toml")]
        Format::Toml => {
            let de = toml::Deserializer::new(text);
            let result = seed.deserialize(serde_path_to_error::Deserializer::new(de, &mut track));
            result.map_err(|e| toml_error(&e, Some(track.path().to_string())))
        }
        Format::Json => {
            let mut de = serde_json::Deserializer::from_str(text);
            let result =
                seed.deserialize(serde_path_to_error::Deserializer::new(&mut de, &mut track));
            let result = result.and_then(|value| de.end().map(|()| value));
            result.map_err(|e| json_error(&e, Some(track.path().to_string())))
        }
        #[cfg(feature = "yaml")]
        Format::Yaml => {
            let de = serde_norway::Deserializer::from_str(text);
            let result = seed.deserialize(serde_path_to_error::Deserializer::new(de, &mut track));
            result.map_err(|e| yaml_error(&e, Some(track.path().to_string())))
        }
        #[cfg(not(all(feature = "toml", feature = "yaml")))]
        disabled => Err(disabled_error(disabled)),
    }
}
