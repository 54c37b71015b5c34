//! The document as parsed: a small tree of values, each with the byte offset it starts at.
//!
//! `toml_edit` gives spans; this tree flattens its item/value/inline-table distinctions (a
//! `[table]` and an `{ inline = "table" }` read the same, as do `[[array]]` and `[{...}]`) so
//! the schema walker has one shape to look at. Strings are kept as written: substitution
//! happens when the walker reads a value, so its errors carry the value's key path.

use toml_edit::{Item, Table, Value};

#[derive(Debug)]
pub(crate) enum RawValue {
    String(String),
    Integer(i64),
    Float(f64),
    Boolean(bool),
    Datetime,
    Array(Vec<Node>),
    Table(Vec<Entry>),
}

impl RawValue {
    /// The TOML type name, for "expected X, found Y" messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            RawValue::String(_) => "a string",
            RawValue::Integer(_) => "an integer",
            RawValue::Float(_) => "a float",
            RawValue::Boolean(_) => "a boolean",
            RawValue::Datetime => "a datetime",
            RawValue::Array(_) => "an array",
            RawValue::Table(_) => "a table",
        }
    }
}

/// A value and the byte offset where it starts in the source.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) value: RawValue,
    pub(crate) at: usize,
}

/// One `key = value` of a table, in file order.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) key: String,
    pub(crate) key_at: usize,
    pub(crate) node: Node,
}

/// Converts the parsed root table.
pub(crate) fn from_root(root: &Table) -> Node {
    Node {
        value: RawValue::Table(table_entries(root, 0)),
        at: 0,
    }
}

fn table_entries(table: &Table, fallback: usize) -> Vec<Entry> {
    table
        .iter()
        .map(|(name, item)| {
            let key_at = table
                .key(name)
                .and_then(|k| k.span())
                .map_or(fallback, |s| s.start);
            Entry {
                key: name.to_owned(),
                key_at,
                node: from_item(item, key_at),
            }
        })
        .collect()
}

fn from_item(item: &Item, fallback: usize) -> Node {
    let at = item.span().map_or(fallback, |s| s.start);
    let value = match item {
        Item::None => RawValue::Table(Vec::new()),
        Item::Value(value) => return from_value(value, fallback),
        Item::Table(table) => RawValue::Table(table_entries(table, at)),
        Item::ArrayOfTables(array) => RawValue::Array(
            array
                .iter()
                .map(|table| {
                    let at = table.span().map_or(at, |s| s.start);
                    Node {
                        value: RawValue::Table(table_entries(table, at)),
                        at,
                    }
                })
                .collect(),
        ),
    };
    Node { value, at }
}

fn from_value(value: &Value, fallback: usize) -> Node {
    let at = value.span().map_or(fallback, |s| s.start);
    let value = match value {
        Value::String(s) => RawValue::String(s.value().clone()),
        Value::Integer(i) => RawValue::Integer(*i.value()),
        Value::Float(f) => RawValue::Float(*f.value()),
        Value::Boolean(b) => RawValue::Boolean(*b.value()),
        Value::Datetime(_) => RawValue::Datetime,
        Value::Array(array) => RawValue::Array(array.iter().map(|v| from_value(v, at)).collect()),
        Value::InlineTable(table) => RawValue::Table(
            table
                .iter()
                .map(|(name, value)| {
                    let key_at = table
                        .key(name)
                        .and_then(|k| k.span())
                        .map_or(at, |s| s.start);
                    Entry {
                        key: name.to_owned(),
                        key_at,
                        node: from_value(value, key_at),
                    }
                })
                .collect(),
        ),
    };
    Node { value, at }
}
