//! The types the generated model ([`super::generated`]) is written in.

/// Where an input member travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Uri,
    Query,
    Header,
    Body,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    Integer,
    Boolean,
    Map,
    List,
    Structure,
    Timestamp,
    Blob,
    Document,
}

/// The constraints of a shape: length (strings), value (integers) or number of entries (maps,
/// lists) between `min` and `max`; a pattern; allowed values; map key / value or list member.
#[derive(Debug)]
pub struct Constraint {
    pub shape: &'static str,
    pub kind: Kind,
    pub min: Option<i64>,
    pub max: Option<i64>,
    pub pattern: Option<&'static str>,
    pub enum_values: &'static [&'static str],
    pub key: Option<&'static Constraint>,
    pub value: Option<&'static Constraint>,
}

/// One input member of an operation.
#[derive(Debug)]
pub struct Member {
    /// The member name (`GameName`, `tags`).
    pub name: &'static str,
    pub location: Location,
    /// The label, query parameter or header name.
    pub location_name: &'static str,
    pub required: bool,
    pub constraint: &'static Constraint,
}
