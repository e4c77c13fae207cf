//! The typed parse: a configuration file's text straight into the file shapes
//! ([`FileConfig`]), one YAML event at a time ([`scan`]), with no value tree and no list of
//! events in between. A file of 100,000 consumers then costs what its consumers cost, not
//! ten times that, and parses in a fraction of the time.
//!
//! It reads a file exactly as the first pass over the value tree ([`super::schema`]) followed by
//! each item's deserialization would, or not at all: anything it is not sure of (YAML the
//! scanner leaves to libyaml, an unknown or repeated key, a value of the wrong type, a scalar
//! such as `0x10` or `~` given for a text, which that path rewrites through the value tree) makes
//! it return `None`, and the caller runs that path, which also explains every problem at its
//! YAML path. So a file that loads gives the same [`super::schema::Parsed`] either way, and a
//! file that does not gives the same problems.

pub mod scan;

use super::file::FileConfig;
use scan::{Declined, Event, Scanner};
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor,
};
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

/// Parses `text` into the file shapes (with the consumers read into `C`), or `None` when the
/// value-tree pass must read it.
pub fn parse<C>(text: &str) -> Option<FileConfig<C>>
where
    FileConfig<C>: DeserializeOwned,
{
    let mut scanner = Scanner::new(text).ok()?;
    let mut de = De {
        scanner: &mut scanner,
        spare: Vec::new(),
    };
    let file = FileConfig::<C>::deserialize(&mut de).ok()?;
    scanner.finish().ok()?;
    Some(file)
}

impl fmt::Display for Declined {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("left to the value-tree pass")
    }
}

impl std::error::Error for Declined {}

impl de::Error for Declined {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Declined
    }
}

/// A scalar as serde_yaml's value tree holds it (its resolution of plain scalars).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Resolved<'s> {
    Null,
    Bool(bool),
    U64(u64),
    I64(i64),
    F64(f64),
    Str(&'s str),
}

/// Resolves a scalar the way serde_yaml 0.9 does for an untagged one: a quoted scalar is text;
/// a plain one is null (empty, `~`, `null`), a boolean (`true`, `False`…), an integer (decimal,
/// `0x`, `0o`, `0b`; a leading zero makes digits text), a float, or else text. Integers beyond
/// 64 bits and infinities are declined (no setting takes them).
fn resolve<'s>(text: &'s str, plain: bool) -> Result<Resolved<'s>, Declined> {
    // Most plain scalars are words: a letter that starts no null, boolean, number or special
    // float (`inf`, `nan`) is text.
    let word = |b: &u8| {
        b.is_ascii_alphabetic()
            && !matches!(b, b'n' | b'N' | b't' | b'T' | b'f' | b'F' | b'i' | b'I')
    };
    if !plain || text.as_bytes().first().is_some_and(word) {
        return Ok(Resolved::Str(text));
    }
    if matches!(text, "" | "~" | "null" | "Null" | "NULL") {
        return Ok(Resolved::Null);
    }
    match text {
        "true" | "True" | "TRUE" => return Ok(Resolved::Bool(true)),
        "false" | "False" | "FALSE" => return Ok(Resolved::Bool(false)),
        _ => {}
    }
    if let Some(n) = unsigned(text, u64::from_str_radix) {
        return Ok(Resolved::U64(n));
    }
    if let Some(n) = negative(text, i64::from_str_radix) {
        return Ok(Resolved::I64(n));
    }
    if unsigned(text, u128::from_str_radix).is_some()
        || negative(text, i128::from_str_radix).is_some()
    {
        return Err(Declined);
    }
    if !leading_zero_digits(text) {
        if let Some(f) = float(text) {
            return Ok(Resolved::F64(f));
        }
        if is_special_float(text) {
            return Err(Declined);
        }
    }
    Ok(Resolved::Str(text))
}

type Radix<T> = fn(&str, u32) -> Result<T, std::num::ParseIntError>;

/// serde_yaml's `parse_unsigned_int`.
fn unsigned<T>(text: &str, parse: Radix<T>) -> Option<T> {
    let unsigned = text.strip_prefix('+').unwrap_or(text);
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(rest) = unsigned.strip_prefix(prefix) {
            if rest.starts_with(['+', '-']) {
                return None;
            }
            if let Ok(n) = parse(rest, radix) {
                return Some(n);
            }
        }
    }
    if unsigned.starts_with(['+', '-']) || leading_zero_digits(text) {
        return None;
    }
    parse(unsigned, 10).ok()
}

/// serde_yaml's `parse_negative_int`.
fn negative<T>(text: &str, parse: Radix<T>) -> Option<T> {
    for (prefix, radix) in [("-0x", 16), ("-0o", 8), ("-0b", 2)] {
        if let Some(rest) = text.strip_prefix(prefix) {
            if let Ok(n) = parse(&format!("-{rest}"), radix) {
                return Some(n);
            }
        }
    }
    if leading_zero_digits(text) {
        return None;
    }
    parse(text, 10).ok()
}

/// serde_yaml's `digits_but_not_number`: `007` is text.
fn leading_zero_digits(text: &str) -> bool {
    let t = text.strip_prefix(['-', '+']).unwrap_or(text);
    t.len() > 1 && t.starts_with('0') && t[1..].bytes().all(|b| b.is_ascii_digit())
}

/// serde_yaml's `parse_f64`, finite values only.
fn float(text: &str) -> Option<f64> {
    let unsigned = match text.strip_prefix('+') {
        Some(u) if u.starts_with(['+', '-']) => return None,
        Some(u) => u,
        None => text,
    };
    unsigned.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// `.inf`, `.nan` and the like, which serde_yaml reads as floats.
fn is_special_float(text: &str) -> bool {
    let t = text.strip_prefix(['+', '-']).unwrap_or(text);
    matches!(
        t,
        ".inf" | ".Inf" | ".INF" | ".nan" | ".NaN" | ".NAN" | "inf" | "infinity" | "nan"
    ) || text.parse::<f64>().is_ok_and(|f| !f.is_finite())
}

/// The serde deserializer over the scanner's events.
struct De<'s, 'a> {
    scanner: &'s mut Scanner<'a>,
    /// Key lists of finished mappings, kept for the next ones (one allocation, not one each).
    spare: Vec<Vec<Cow<'a, str>>>,
}

impl<'a> De<'_, 'a> {
    fn scalar(&mut self) -> Result<scan::Scalar<'a>, Declined> {
        match self.scanner.event()? {
            Event::Scalar(s) => Ok(s),
            _ => Err(Declined),
        }
    }
}

/// Asks `$visit` of the resolved scalar, declining every other kind.
macro_rules! number {
    ($name:ident) => {
        fn $name<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Declined> {
            let s = self.scalar()?;
            match resolve(&s.text, s.plain)? {
                Resolved::U64(n) => v.visit_u64(n),
                Resolved::I64(n) => v.visit_i64(n),
                _ => Err(Declined),
            }
        }
    };
}

impl<'de> Deserializer<'de> for &mut De<'_, '_> {
    type Error = Declined;

    /// Only `serde_yaml::Value` fields ask for any: money and prices, which are scalars.
    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Declined> {
        let s = self.scalar()?;
        match resolve(&s.text, s.plain)? {
            Resolved::Null => v.visit_unit(),
            Resolved::Bool(b) => v.visit_bool(b),
            Resolved::U64(n) => v.visit_u64(n),
            Resolved::I64(n) => v.visit_i64(n),
            Resolved::F64(f) => v.visit_f64(f),
            Resolved::Str(t) => v.visit_str(t),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Declined> {
        let s = self.scalar()?;
        match resolve(&s.text, s.plain)? {
            Resolved::Bool(b) => v.visit_bool(b),
            _ => Err(Declined),
        }
    }

    number!(deserialize_u8);
    number!(deserialize_u16);
    number!(deserialize_u32);
    number!(deserialize_u64);
    number!(deserialize_i8);
    number!(deserialize_i16);
    number!(deserialize_i32);
    number!(deserialize_i64);

    /// The value tree turns an integer into a float's text only through its digits, which parse
    /// back to the integer's nearest float, as `as` converts it.
    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Declined> {
        let s = self.scalar()?;
        match resolve(&s.text, s.plain)? {
            Resolved::U64(n) => v.visit_f64(n as f64),
            Resolved::I64(n) => v.visit_f64(n as f64),
            Resolved::F64(f) => v.visit_f64(f),
            _ => Err(Declined),
        }
    }

    fn deserialize_f32<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Declined> {
        Err(Declined)
    }

    /// Text only when the value tree holds text: it would write `~`, `true` or `0x10` back as
    /// `null`, `true` or `16` first.
    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Declined> {
        let s = self.scalar()?;
        match resolve(&s.text, s.plain)? {
            Resolved::Str(t) => v.visit_str(t),
            _ => Err(Declined),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Declined> {
        self.deserialize_str(v)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Declined> {
        self.deserialize_str(v)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Declined> {
        let null = match self.scanner.peek()? {
            Event::Scalar(s) => resolve(&s.text, s.plain)? == Resolved::Null,
            _ => false,
        };
        if null {
            self.scanner.event()?;
            v.visit_none()
        } else {
            v.visit_some(self)
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Declined> {
        match self.scanner.event()? {
            Event::SeqStart => v.visit_seq(Seq(self)),
            _ => Err(Declined),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Declined> {
        match self.scanner.event()? {
            Event::MapStart => {
                let few = self.spare.pop().unwrap_or_default();
                v.visit_map(Map {
                    de: self,
                    seen: Keys {
                        few,
                        many: HashSet::new(),
                    },
                })
            }
            _ => Err(Declined),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Declined> {
        self.deserialize_map(v)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        v: V,
    ) -> Result<V::Value, Declined> {
        v.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        i128 u128 char bytes byte_buf unit unit_struct tuple tuple_struct enum ignored_any
    }
}

struct Seq<'d, 's, 'a>(&'d mut De<'s, 'a>);

impl<'de> SeqAccess<'de> for Seq<'_, '_, '_> {
    type Error = Declined;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Declined> {
        if *self.0.scanner.peek()? == Event::SeqEnd {
            self.0.scanner.event()?;
            return Ok(None);
        }
        seed.deserialize(&mut *self.0).map(Some)
    }
}

/// The keys of one mapping so far: a repeated key is declined (the value tree refuses it).
struct Keys<'a> {
    few: Vec<Cow<'a, str>>,
    many: HashSet<Cow<'a, str>>,
}

impl<'a> Keys<'a> {
    /// Mappings of a few keys (a consumer's) are searched; long ones (pricing, teams) hashed.
    const FEW: usize = 16;

    fn insert(&mut self, key: Cow<'a, str>) -> Result<(), Declined> {
        if self.few.contains(&key) || self.many.contains(&key) {
            return Err(Declined);
        }
        if self.few.len() < Self::FEW {
            self.few.push(key);
        } else {
            self.many.insert(key);
        }
        Ok(())
    }
}

struct Map<'d, 's, 'a> {
    de: &'d mut De<'s, 'a>,
    seen: Keys<'a>,
}

impl<'de> MapAccess<'de> for Map<'_, '_, '_> {
    type Error = Declined;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Declined> {
        let key = match self.de.scanner.event()? {
            Event::MapEnd => {
                let mut few = std::mem::take(&mut self.seen.few);
                few.clear();
                self.de.spare.push(few);
                return Ok(None);
            }
            Event::Scalar(s) if matches!(resolve(&s.text, s.plain)?, Resolved::Str(_)) => s.text,
            _ => return Err(Declined),
        };
        let value = seed.deserialize(de::value::StrDeserializer::<Declined>::new(&key))?;
        self.seen.insert(key)?;
        Ok(Some(value))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Declined> {
        seed.deserialize(&mut *self.de)
    }
}

#[cfg(test)]
mod tests;
