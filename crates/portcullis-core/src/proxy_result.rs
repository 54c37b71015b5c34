//! An integration's Lambda-proxy result, read in one pass without a `serde_json::Value` tree:
//! the members both result formats use (WebSocket routes' [`crate::event::parse_proxy_result`]
//! and HTTP APIs' payload 2.0 [`crate::http_event::parse_http_result`]) as borrowed slices of
//! the input wherever the JSON has no escapes.
//!
//! The reading keeps `serde_json::Value`'s semantics exactly, so both parsers answer as they did
//! when they parsed a tree: a member repeated at the top level keeps its last value; a header
//! name repeated inside `headers` or `multiValueHeaders` keeps its first position and its last
//! value (an insertion-ordered map); every member, ignored ones included, must be valid JSON
//! within serde_json's limits (numbers that fit an `f64`, nesting at most 128 deep); header
//! values and bodies that are not strings become their compact JSON text. Members of the wrong
//! type are recorded, not refused, so that the result's checks run in their documented order
//! after the whole input was read (invalid JSON is always reported as such).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use serde::Deserialize;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// A whole result.
#[derive(Debug)]
pub(crate) enum Doc<'a> {
    /// A JSON object: the members the formats know.
    Object(Members<'a>),
    /// A JSON string: its contents.
    Str(Cow<'a, str>),
    /// `null`.
    Null,
    /// A number, boolean or array (its text is the input itself).
    Other,
}

/// Header names and values, in order.
pub(crate) type Headers<'a> = Vec<(Cow<'a, str>, Text<'a>)>;

/// The known members of a result object; `None` when absent.
#[derive(Debug, Default)]
pub(crate) struct Members<'a> {
    pub status_code: Option<Status<'a>>,
    pub headers: Option<Field<Headers<'a>>>,
    /// Values are [`Text::List`] for arrays.
    pub multi_value_headers: Option<Field<Headers<'a>>>,
    pub cookies: Option<Field<Vec<Text<'a>>>>,
    pub is_base64_encoded: Option<Field<bool>>,
    pub body: Option<Text<'a>>,
}

/// A member that must be of one type (or `null`).
#[derive(Debug)]
pub(crate) enum Field<T> {
    Null,
    Value(T),
    Wrong,
}

/// `statusCode` as sent.
#[derive(Debug)]
pub(crate) enum Status<'a> {
    Null,
    /// A non-negative integer.
    Int(u64),
    Str(Cow<'a, str>),
    /// A negative or fractional number, a boolean, an array or an object.
    Wrong,
}

/// A header value or body: a string, `null`, or other JSON kept as a value to print.
#[derive(Debug)]
pub(crate) enum Text<'a> {
    Null,
    Str(Cow<'a, str>),
    /// Any other JSON, printed compactly when used (rare: a number, boolean, object).
    Json(Value),
    /// An array, in `multiValueHeaders` only (elements are never `List`).
    List(Vec<Text<'a>>),
}

impl<'a> Text<'a> {
    /// The text a header gets: strings as they are, `null` dropped, other JSON as its text.
    pub fn header_value(self) -> Option<Cow<'a, str>> {
        match self {
            Text::Null => None,
            Text::Str(s) => Some(s),
            Text::Json(v) => Some(Cow::Owned(v.to_string())),
            Text::List(items) => Some(Cow::Owned(list_text(items))),
        }
    }
}

/// An array of texts printed as the JSON array it was (never reached by the formats' rules:
/// `List` only stands for a whole `multiValueHeaders` value).
fn list_text(items: Vec<Text<'_>>) -> String {
    let values: Vec<Value> = items
        .into_iter()
        .map(|t| match t {
            Text::Null => Value::Null,
            Text::Str(s) => Value::String(s.into_owned()),
            Text::Json(v) => v,
            Text::List(inner) => Value::String(list_text(inner)),
        })
        .collect();
    Value::Array(values).to_string()
}

/// Reads a result; invalid JSON (including an empty input) is an error.
pub(crate) fn parse(bytes: &[u8]) -> Result<Doc<'_>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let doc = Doc::deserialize(&mut de)?;
    de.end()?;
    Ok(doc)
}

// ---------------------------------------------------------------------------------------------
// Visitors

/// Consumes any JSON value, as strictly as `Value` would parse it (numbers in range, nesting
/// limit), keeping nothing. `IgnoredAny` is looser: it skips numbers without converting them.
struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SkipVisitor)
    }
}

struct SkipVisitor;

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = Skip;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_str<E>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_unit<E>(self) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value::<Skip>()?;
        }
        Ok(Skip)
    }
}

/// A string, borrowed from the input when it has no escapes.
struct Str<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Reads a [`Text`]; arrays become [`Text::List`] when `list` (one level only).
#[derive(Clone, Copy)]
struct TextSeed {
    list: bool,
}

impl<'de> DeserializeSeed<'de> for TextSeed {
    type Value = Text<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Text<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TextSeed {
    type Value = Text<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Text<'de>, E> {
        Ok(Text::Json(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Text<'de>, E> {
        Ok(Text::Json(Value::from(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Text<'de>, E> {
        Ok(Text::Json(Value::from(v)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Text<'de>, E> {
        Ok(Text::Json(Value::from(v)))
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Text<'de>, E> {
        Ok(Text::Str(Cow::Borrowed(s)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Text<'de>, E> {
        Ok(Text::Str(Cow::Owned(s.to_owned())))
    }
    fn visit_string<E>(self, s: String) -> Result<Text<'de>, E> {
        Ok(Text::Str(Cow::Owned(s)))
    }
    fn visit_unit<E>(self) -> Result<Text<'de>, E> {
        Ok(Text::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Text<'de>, A::Error> {
        if !self.list {
            return Value::deserialize(SeqAccessDeserializer::new(seq)).map(Text::Json);
        }
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(16));
        while let Some(item) = seq.next_element_seed(TextSeed { list: false })? {
            items.push(item);
        }
        Ok(Text::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Text<'de>, A::Error> {
        Value::deserialize(MapAccessDeserializer::new(map)).map(Text::Json)
    }
}

/// Reads a member that must be of one [`Kind`] (or `null`); other types are `Wrong`.
struct FieldSeed {
    kind: Kind,
}

/// What a [`FieldSeed`] accepts.
#[derive(Clone, Copy)]
enum Kind {
    /// An object of header values (`multi`: values may be arrays).
    Headers { multi: bool },
    /// An array of texts.
    List,
    /// A boolean.
    Bool,
}

/// The value a [`FieldSeed`] produces.
enum Read<'a> {
    Headers(Headers<'a>),
    List(Vec<Text<'a>>),
    Bool(bool),
}

impl<'de> DeserializeSeed<'de> for FieldSeed {
    type Value = Field<Read<'de>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FieldSeed {
    type Value = Field<Read<'de>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(match self.kind {
            Kind::Bool => Field::Value(Read::Bool(v)),
            _ => Field::Wrong,
        })
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Field::Wrong)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Field::Wrong)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Field::Wrong)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Field::Wrong)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Field::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        if !matches!(self.kind, Kind::List) {
            while seq.next_element::<Skip>()?.is_some() {}
            return Ok(Field::Wrong);
        }
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(16));
        while let Some(item) = seq.next_element_seed(TextSeed { list: false })? {
            items.push(item);
        }
        Ok(Field::Value(Read::List(items)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let Kind::Headers { multi } = self.kind else {
            while map.next_key::<IgnoredAny>()?.is_some() {
                map.next_value::<Skip>()?;
            }
            return Ok(Field::Wrong);
        };
        let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(0).min(32));
        while let Some(Str(name)) = map.next_key::<Str>()? {
            let value = map.next_value_seed(TextSeed { list: multi })?;
            pairs.push((name, value));
        }
        Ok(Field::Value(Read::Headers(keep_last(pairs))))
    }
}

/// `statusCode`.
struct StatusSeed;

impl<'de> DeserializeSeed<'de> for StatusSeed {
    type Value = Status<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Status<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StatusSeed {
    type Value = Status<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Status<'de>, E> {
        Ok(Status::Wrong)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Status<'de>, E> {
        Ok(Status::Wrong)
    }
    fn visit_u64<E>(self, v: u64) -> Result<Status<'de>, E> {
        Ok(Status::Int(v))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Status<'de>, E> {
        Ok(Status::Wrong)
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Status<'de>, E> {
        Ok(Status::Str(Cow::Borrowed(s)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Status<'de>, E> {
        Ok(Status::Str(Cow::Owned(s.to_owned())))
    }
    fn visit_unit<E>(self) -> Result<Status<'de>, E> {
        Ok(Status::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Status<'de>, A::Error> {
        SkipVisitor.visit_seq(seq).map(|_| Status::Wrong)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Status<'de>, A::Error> {
        SkipVisitor.visit_map(map).map(|_| Status::Wrong)
    }
}

/// A top-level member name.
enum Key {
    StatusCode,
    Headers,
    MultiValueHeaders,
    Cookies,
    IsBase64Encoded,
    Body,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E>(self, s: &str) -> Result<Key, E> {
                Ok(match s {
                    "statusCode" => Key::StatusCode,
                    "headers" => Key::Headers,
                    "multiValueHeaders" => Key::MultiValueHeaders,
                    "cookies" => Key::Cookies,
                    "isBase64Encoded" => Key::IsBase64Encoded,
                    "body" => Key::Body,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_str(V)
    }
}

fn headers_of(field: Field<Read<'_>>) -> Field<Headers<'_>> {
    match field {
        Field::Value(Read::Headers(h)) => Field::Value(h),
        Field::Null => Field::Null,
        _ => Field::Wrong,
    }
}

impl<'de> Deserialize<'de> for Doc<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Doc<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Doc<'de>, E> {
                Ok(Doc::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Doc<'de>, E> {
                Ok(Doc::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Doc<'de>, E> {
                Ok(Doc::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Doc<'de>, E> {
                Ok(Doc::Other)
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Doc<'de>, E> {
                Ok(Doc::Str(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Doc<'de>, E> {
                Ok(Doc::Str(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Doc<'de>, E> {
                Ok(Doc::Str(Cow::Owned(s)))
            }
            fn visit_unit<E>(self) -> Result<Doc<'de>, E> {
                Ok(Doc::Null)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Doc<'de>, A::Error> {
                SkipVisitor.visit_seq(seq).map(|_| Doc::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Doc<'de>, A::Error> {
                let mut m = Members::default();
                while let Some(key) = map.next_key::<Key>()? {
                    // A repeated member keeps its last value, as in a `Value` object.
                    match key {
                        Key::StatusCode => m.status_code = Some(map.next_value_seed(StatusSeed)?),
                        Key::Headers => {
                            let kind = Kind::Headers { multi: false };
                            m.headers = Some(headers_of(map.next_value_seed(FieldSeed { kind })?));
                        }
                        Key::MultiValueHeaders => {
                            let kind = Kind::Headers { multi: true };
                            m.multi_value_headers =
                                Some(headers_of(map.next_value_seed(FieldSeed { kind })?));
                        }
                        Key::Cookies => {
                            let kind = Kind::List;
                            m.cookies = Some(match map.next_value_seed(FieldSeed { kind })? {
                                Field::Value(Read::List(items)) => Field::Value(items),
                                Field::Null => Field::Null,
                                _ => Field::Wrong,
                            });
                        }
                        Key::IsBase64Encoded => {
                            let kind = Kind::Bool;
                            m.is_base64_encoded =
                                Some(match map.next_value_seed(FieldSeed { kind })? {
                                    Field::Value(Read::Bool(b)) => Field::Value(b),
                                    Field::Null => Field::Null,
                                    _ => Field::Wrong,
                                });
                        }
                        Key::Body => {
                            m.body = Some(map.next_value_seed(TextSeed { list: false })?);
                        }
                        Key::Other => {
                            map.next_value::<Skip>()?;
                        }
                    }
                }
                Ok(Doc::Object(m))
            }
        }
        d.deserialize_any(V)
    }
}

/// Pairs with repeated names collapsed as an insertion-ordered map does: the first position,
/// the last value.
fn keep_last<'a, T>(pairs: Vec<(Cow<'a, str>, T)>) -> Vec<(Cow<'a, str>, T)> {
    const SMALL: usize = 32;
    let n = pairs.len();
    if n < 2 {
        return pairs;
    }
    if n <= SMALL {
        let repeated = pairs
            .iter()
            .enumerate()
            .any(|(j, (name, _))| pairs.iter().take(j).any(|(seen, _)| seen == name));
        if !repeated {
            return pairs;
        }
    }
    let mut at: HashMap<String, usize> = HashMap::with_capacity(n);
    let mut out: Vec<(Cow<'a, str>, T)> = Vec::with_capacity(n);
    for (name, value) in pairs {
        match at.get(name.as_ref()) {
            Some(&i) => {
                if let Some(slot) = out.get_mut(i) {
                    slot.1 = value;
                }
            }
            None => {
                at.insert(name.as_ref().to_owned(), out.len());
                out.push((name, value));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
