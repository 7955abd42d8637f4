//! Parameter decoding: JSON bodies and flattened query/form parameters into one typed JSON tree.
//!
//! Tencent Cloud API 3.0 carries the same action parameters in three encodings (see
//! `tencent-api3.md` §1 and §5): a JSON object (TC3 `POST application/json`) and flattened
//! `Name.0=…&Name.Key=…` pairs (GET query, v1 `POST x-www-form-urlencoded`). [`ApiSchema`]
//! validates either one against the request structure of the action and returns a single
//! [`serde_json::Value`] object that holds only schema members with correctly typed values
//! (integers as JSON numbers, booleans as JSON booleans), ready for `serde` to turn into typed
//! request structs with PascalCase field names.
//!
//! The schema is generated from tccli's machine description by `tools/gen_tencent_schema.py`
//! (layout documented there) and embedded with `include_str!`; [`ApiSchema::gse`] is GSE
//! 2019-11-12 with all 74 actions, so "implemented but unsupported" actions can be told from
//! unknown names with [`ApiSchema::has_action`].
//!
//! Error codes ([`ParamError::code`]): `UnknownParameter` (name not in the schema, any depth),
//! `MissingParameter` (required member absent; JSON `null` counts as absent), `InvalidParameter`
//! (wrong structure: malformed JSON, a scalar where a list/object is expected, duplicate or
//! non-contiguous flattened keys, too deep nesting), `InvalidParameterValue` (a scalar that does
//! not convert to the declared type, list index or length above the limits).
//!
//! Hostile input is bounded: JSON nesting deeper than [`MAX_DEPTH`] is rejected before parsing,
//! flattened keys may have at most [`MAX_DEPTH`] segments, list indices and lengths are limited
//! by [`MAX_LIST_INDEX`], and echoed values in messages are truncated.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::OnceLock;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Maximum nesting depth of a JSON body (the top-level object is depth 1) and maximum number
/// of dot-separated segments of a flattened key.
pub const MAX_DEPTH: usize = 32;

/// Largest accepted list index of a flattened key (`Name.10000`); JSON lists may hold at most
/// `MAX_LIST_INDEX + 1` elements.
pub const MAX_LIST_INDEX: usize = 10_000;

/// Characters of an offending value that are echoed back in an error message.
const MAX_ECHO_CHARS: usize = 64;

/// Common parameters of the flattened encodings (v1 signature fields); they are not action
/// parameters and are skipped by [`ApiSchema::decode_flat`] (at top level only, and only when
/// the action's request has no member of the same name).
pub const COMMON_PARAMS: &[&str] = &[
    "Action",
    "Version",
    "Region",
    "Timestamp",
    "Nonce",
    "SecretId",
    "SignatureMethod",
    "Signature",
    "Token",
    "Language",
    "RequestClient",
];

static GSE_SCHEMA_JSON: &str = include_str!("../schema/gse-2019-11-12.json");
static DCDB_SCHEMA_JSON: &str = include_str!("../schema/dcdb-2018-04-11.json");

/// Error while decoding request parameters; [`code`](ParamError::code) is the Tencent error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// The action is not in the schema at all (callers normally check
    /// [`ApiSchema::has_action`] first). Code `InvalidAction`.
    #[error("The action {action} does not exist")]
    UnknownAction { action: String },
    /// A parameter name the action does not define, at any depth.
    #[error("Unknown parameter {path} for action {action}")]
    UnknownParameter { action: String, path: String },
    /// A required member is absent (or `null`).
    #[error("Missing required parameter {path}")]
    MissingParameter { path: String },
    /// Structure is wrong (malformed JSON, list/object/scalar mix-up, duplicate or
    /// non-contiguous flattened keys, nesting too deep). `path` may be empty.
    #[error("{message}")]
    InvalidParameter { path: String, message: String },
    /// A value does not convert to the declared type or exceeds a limit.
    #[error("{message}")]
    InvalidParameterValue { path: String, message: String },
}

impl ParamError {
    /// Tencent error code: `UnknownParameter`, `MissingParameter`, `InvalidParameter`,
    /// `InvalidParameterValue` (or `InvalidAction` for [`ParamError::UnknownAction`]).
    pub fn code(&self) -> &'static str {
        match self {
            ParamError::UnknownAction { .. } => "InvalidAction",
            ParamError::UnknownParameter { .. } => "UnknownParameter",
            ParamError::MissingParameter { .. } => "MissingParameter",
            ParamError::InvalidParameter { .. } => "InvalidParameter",
            ParamError::InvalidParameterValue { .. } => "InvalidParameterValue",
        }
    }

    /// Parameter path the error is about, as the client wrote it (`""` when not applicable).
    pub fn path(&self) -> &str {
        match self {
            ParamError::UnknownAction { .. } => "",
            ParamError::UnknownParameter { path, .. }
            | ParamError::MissingParameter { path }
            | ParamError::InvalidParameter { path, .. }
            | ParamError::InvalidParameterValue { path, .. } => path,
        }
    }

    fn invalid(path: &str, message: String) -> Self {
        ParamError::InvalidParameter {
            path: path.to_owned(),
            message,
        }
    }

    fn invalid_value(path: &str, message: String) -> Self {
        ParamError::InvalidParameterValue {
            path: path.to_owned(),
            message,
        }
    }
}

/// Declared type of a scalar member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarType {
    String,
    Int,
    Uint,
    Float,
    Bool,
}

impl ScalarType {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "string" => ScalarType::String,
            "int" => ScalarType::Int,
            "uint" => ScalarType::Uint,
            "float" => ScalarType::Float,
            "bool" => ScalarType::Bool,
            _ => return None,
        })
    }

    /// "expects …" wording for messages.
    fn expects(self) -> &'static str {
        match self {
            ScalarType::String => "a string",
            ScalarType::Int => "an integer",
            ScalarType::Uint => "an unsigned integer",
            ScalarType::Float => "a number",
            ScalarType::Bool => "a boolean (true/false)",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Elem {
    Scalar(ScalarType),
    /// Index into `ApiSchema::objects`.
    Object(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Scalar(ScalarType),
    Object(usize),
    List(Elem),
}

#[derive(Debug, Clone)]
struct Member {
    ty: Ty,
    required: bool,
}

#[derive(Debug, Clone, Default)]
struct ObjectSchema {
    members: BTreeMap<String, Member>,
}

/// Request-parameter schema of one Tencent service version (see `tools/gen_tencent_schema.py`).
#[derive(Debug, Clone)]
pub struct ApiSchema {
    service: String,
    version: String,
    actions: BTreeSet<String>,
    /// Action name → index into `objects` of its request structure.
    requests: HashMap<String, usize>,
    objects: Vec<ObjectSchema>,
}

impl ApiSchema {
    /// Parses a schema file written by `tools/gen_tencent_schema.py`.
    pub fn from_json(text: &str) -> Result<ApiSchema, String> {
        let root: Value = serde_json::from_str(text).map_err(|e| format!("schema: {e}"))?;
        let root = root.as_object().ok_or("schema: not a JSON object")?;
        let get_str = |key: &str| -> Result<String, String> {
            root.get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("schema: missing string {key:?}"))
        };
        let service = get_str("service")?;
        let version = get_str("version")?;
        let mut actions = BTreeSet::new();
        for a in root
            .get("actions")
            .and_then(Value::as_array)
            .ok_or("schema: missing array \"actions\"")?
        {
            let a = a.as_str().ok_or("schema: action name is not a string")?;
            if !actions.insert(a.to_owned()) {
                return Err(format!("schema: duplicate action {a}"));
            }
        }
        let empty = Map::new();
        let objects_json = match root.get("objects") {
            None => &empty,
            Some(v) => v
                .as_object()
                .ok_or("schema: \"objects\" is not an object")?,
        };
        let requests_json = root
            .get("requests")
            .and_then(Value::as_object)
            .ok_or("schema: missing object \"requests\"")?;

        // Named structures take indices 0..n, request structures follow.
        let names: HashMap<&str, usize> = objects_json
            .keys()
            .enumerate()
            .map(|(i, k)| (k.as_str(), i))
            .collect();
        let mut objects = Vec::with_capacity(objects_json.len() + requests_json.len());
        for (name, obj) in objects_json {
            objects.push(parse_object(name, obj, &names)?);
        }
        let mut requests = HashMap::with_capacity(requests_json.len());
        for (action, obj) in requests_json {
            if !actions.contains(action) {
                return Err(format!("schema: request for unlisted action {action}"));
            }
            requests.insert(action.clone(), objects.len());
            objects.push(parse_object(action, obj, &names)?);
        }
        if let Some(a) = actions.iter().find(|a| !requests.contains_key(*a)) {
            return Err(format!("schema: action {a} has no request structure"));
        }
        Ok(ApiSchema {
            service,
            version,
            actions,
            requests,
            objects,
        })
    }

    /// GSE 2019-11-12 (all 74 actions), parsed once from the embedded schema file.
    pub fn gse() -> &'static ApiSchema {
        static GSE: OnceLock<ApiSchema> = OnceLock::new();
        GSE.get_or_init(|| {
            ApiSchema::from_json(GSE_SCHEMA_JSON).expect("embedded GSE schema is valid")
        })
    }

    /// DCDB 2018-04-11 (all 83 actions of tccli 3.1.189.1), parsed once from the embedded schema.
    pub fn dcdb() -> &'static ApiSchema {
        static DCDB: OnceLock<ApiSchema> = OnceLock::new();
        DCDB.get_or_init(|| {
            ApiSchema::from_json(DCDB_SCHEMA_JSON).expect("embedded DCDB schema is valid")
        })
    }

    /// Service name, e.g. `gse`.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// API version, e.g. `2019-11-12`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Whether the service version defines `action` (case-sensitive).
    pub fn has_action(&self, action: &str) -> bool {
        self.actions.contains(action)
    }

    /// All action names, sorted.
    pub fn actions(&self) -> impl Iterator<Item = &str> {
        self.actions.iter().map(String::as_str)
    }

    fn request(&self, action: &str) -> Result<usize, ParamError> {
        self.requests
            .get(action)
            .copied()
            .ok_or_else(|| ParamError::UnknownAction {
                action: action.to_owned(),
            })
    }

    /// JSON body (TC3 POST): must be a JSON object; validates names and types against the
    /// action's request schema. An empty (or all-whitespace) body counts as `{}`. String values
    /// are coerced to the declared scalar types (`"8000"` for an int); `null` members are absent.
    pub fn decode_json(&self, action: &str, body: &[u8]) -> Result<Value, ParamError> {
        let req = self.request(action)?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return self
                .json_object(action, req, &Map::new(), "", 1)
                .map(Value::Object);
        }
        check_json_depth(body)?;
        let parsed: StrictValue = serde_json::from_slice(body).map_err(|e| {
            ParamError::invalid("", format!("The request body is not valid JSON: {e}"))
        })?;
        match parsed.0 {
            Value::Object(map) => self
                .json_object(action, req, &map, "", 1)
                .map(Value::Object),
            other => Err(ParamError::invalid(
                "",
                format!(
                    "The request body must be a JSON object, got {}",
                    describe_json(&other)
                ),
            )),
        }
    }

    /// Flattened params (GET query or v1 form), already form-decoded, in wire order. Common
    /// parameters ([`COMMON_PARAMS`]) are skipped. Rebuilds the nested JSON value: `Name.0`,
    /// `Name.1` lists (0-based, contiguous), `Name.Key` object members, nested paths like
    /// `RuntimeConfiguration.ServerProcesses.0.LaunchPath`; scalars are coerced from strings to
    /// the declared type (ints as JSON numbers, bools from `true/false/True/False/1/0`, floats).
    pub fn decode_flat(
        &self,
        action: &str,
        params: &[(String, String)],
    ) -> Result<Value, ParamError> {
        let req = self.request(action)?;
        let root_schema = &self.objects[req];
        let mut root = BTreeMap::new();
        for (key, value) in params {
            if COMMON_PARAMS.contains(&key.as_str()) && !root_schema.members.contains_key(key) {
                continue;
            }
            // At most MAX_DEPTH + 1 segments are split off, so a key of many dots costs nothing.
            let segs: Vec<&str> = key.split('.').take(MAX_DEPTH + 1).collect();
            if segs.len() > MAX_DEPTH {
                return Err(ParamError::invalid(
                    key,
                    format!(
                        "The parameter `{}` is nested deeper than {MAX_DEPTH} levels",
                        truncate(key)
                    ),
                ));
            }
            let mut ends = Vec::with_capacity(segs.len());
            let mut end = 0;
            for (i, s) in segs.iter().enumerate() {
                end += s.len() + usize::from(i > 0);
                ends.push(end);
            }
            let flat = FlatKey {
                key,
                segs: &segs,
                ends: &ends,
            };
            self.flat_insert(action, req, &mut root, &flat, 0, value)?;
        }
        self.flat_finish_object(req, root, "").map(Value::Object)
    }

    /// Convenience: decodes raw `application/x-www-form-urlencoded` bytes (a form body or a query
    /// string without `?`) and calls [`decode_flat`](Self::decode_flat).
    pub fn decode_urlencoded(&self, action: &str, raw: &[u8]) -> Result<Value, ParamError> {
        let params: Vec<(String, String)> = form_urlencoded::parse(raw).into_owned().collect();
        self.decode_flat(action, &params)
    }

    // ----- JSON -----

    fn json_object(
        &self,
        action: &str,
        obj: usize,
        map: &Map<String, Value>,
        prefix: &str,
        depth: usize,
    ) -> Result<Map<String, Value>, ParamError> {
        if depth > MAX_DEPTH {
            return Err(ParamError::invalid(
                prefix,
                format!("The parameter `{prefix}` is nested deeper than {MAX_DEPTH} levels"),
            ));
        }
        let schema = &self.objects[obj];
        let mut out = Map::new();
        for (name, value) in map {
            let path = join(prefix, name);
            let Some(member) = schema.members.get(name) else {
                return Err(ParamError::UnknownParameter {
                    action: action.to_owned(),
                    path: truncate(&path),
                });
            };
            if value.is_null() {
                continue;
            }
            let decoded = match member.ty {
                Ty::Scalar(t) => coerce_json(t, value, &path)?,
                Ty::Object(idx) => {
                    Value::Object(self.json_nested(action, idx, value, &path, depth)?)
                }
                Ty::List(elem) => {
                    let Value::Array(items) = value else {
                        return Err(ParamError::invalid(
                            &path,
                            format!(
                                "The parameter `{path}` expects a list, got {}",
                                describe_json(value)
                            ),
                        ));
                    };
                    if items.len() > MAX_LIST_INDEX + 1 {
                        return Err(ParamError::invalid_value(
                            &path,
                            format!(
                                "The parameter `{path}` has {} elements, more than the limit of {}",
                                items.len(),
                                MAX_LIST_INDEX + 1
                            ),
                        ));
                    }
                    let mut list = Vec::with_capacity(items.len());
                    for (i, item) in items.iter().enumerate() {
                        let ipath = format!("{path}.{i}");
                        if item.is_null() {
                            return Err(ParamError::invalid_value(
                                &ipath,
                                format!("The parameter `{ipath}` must not be null"),
                            ));
                        }
                        list.push(match elem {
                            Elem::Scalar(t) => coerce_json(t, item, &ipath)?,
                            Elem::Object(idx) => Value::Object(self.json_nested(
                                action,
                                idx,
                                item,
                                &ipath,
                                depth + 1,
                            )?),
                        });
                    }
                    Value::Array(list)
                }
            };
            out.insert(name.clone(), decoded);
        }
        check_required(schema, prefix, |name| out.contains_key(name))?;
        Ok(out)
    }

    fn json_nested(
        &self,
        action: &str,
        obj: usize,
        value: &Value,
        path: &str,
        depth: usize,
    ) -> Result<Map<String, Value>, ParamError> {
        match value {
            Value::Object(map) => self.json_object(action, obj, map, path, depth + 1),
            other => Err(ParamError::invalid(
                path,
                format!(
                    "The parameter `{path}` expects an object, got {}",
                    describe_json(other)
                ),
            )),
        }
    }

    // ----- flattened -----

    /// Inserts one flattened key, starting at segment `i`, into the object `map` whose schema is
    /// `obj`. Recursion depth is bounded by the number of segments (≤ `MAX_DEPTH`).
    fn flat_insert(
        &self,
        action: &str,
        obj: usize,
        map: &mut BTreeMap<String, Slot>,
        key: &FlatKey<'_>,
        i: usize,
        value: &str,
    ) -> Result<(), ParamError> {
        let name = key.segs[i];
        let here = key.prefix(i);
        let Some(member) = self.objects[obj].members.get(name) else {
            return Err(ParamError::UnknownParameter {
                action: action.to_owned(),
                path: truncate(here),
            });
        };
        let last = i + 1 == key.segs.len();
        match member.ty {
            Ty::Scalar(t) => {
                if !last {
                    return Err(key.not_container(i, t));
                }
                let v = coerce_str(t, value, key.key)?;
                put_scalar(map.entry(name.to_owned()), v, key.key)
            }
            Ty::Object(idx) => {
                if last {
                    return Err(key.needs_members(i));
                }
                match map
                    .entry(name.to_owned())
                    .or_insert_with(|| Slot::Object(BTreeMap::new()))
                {
                    Slot::Object(inner) => self.flat_insert(action, idx, inner, key, i + 1, value),
                    _ => Err(key.conflict(i)),
                }
            }
            Ty::List(elem) => {
                if last {
                    return Err(ParamError::invalid(
                        key.key,
                        format!(
                            "The parameter `{here}` is a list; send it as `{here}.0`, `{here}.1`, …"
                        ),
                    ));
                }
                let index = key.index(i + 1)?;
                let Slot::List(items) = map
                    .entry(name.to_owned())
                    .or_insert_with(|| Slot::List(BTreeMap::new()))
                else {
                    return Err(key.conflict(i));
                };
                let elem_last = i + 2 == key.segs.len();
                match elem {
                    Elem::Scalar(t) => {
                        if !elem_last {
                            return Err(key.not_container(i + 1, t));
                        }
                        let v = coerce_str(t, value, key.key)?;
                        put_scalar(items.entry(index), v, key.key)
                    }
                    Elem::Object(idx) => {
                        if elem_last {
                            return Err(key.needs_members(i + 1));
                        }
                        match items
                            .entry(index)
                            .or_insert_with(|| Slot::Object(BTreeMap::new()))
                        {
                            Slot::Object(inner) => {
                                self.flat_insert(action, idx, inner, key, i + 2, value)
                            }
                            _ => Err(key.conflict(i + 1)),
                        }
                    }
                }
            }
        }
    }

    /// Turns a collected object into JSON, checking list contiguity and required members.
    fn flat_finish_object(
        &self,
        obj: usize,
        map: BTreeMap<String, Slot>,
        prefix: &str,
    ) -> Result<Map<String, Value>, ParamError> {
        let schema = &self.objects[obj];
        let mut out = Map::new();
        for (name, slot) in map {
            let path = join(prefix, &name);
            let value = match (schema.members.get(&name).map(|m| m.ty), slot) {
                (Some(Ty::Scalar(_)), Slot::Scalar(v)) => v,
                (Some(Ty::Object(idx)), Slot::Object(inner)) => {
                    Value::Object(self.flat_finish_object(idx, inner, &path)?)
                }
                (Some(Ty::List(elem)), Slot::List(items)) => {
                    let mut list = Vec::with_capacity(items.len());
                    for (expected, (index, item)) in items.into_iter().enumerate() {
                        if index != expected {
                            return Err(ParamError::invalid(
                                &path,
                                format!(
                                    "The parameter `{path}` has non-contiguous indices: \
                                     `{path}.{index}` given but `{path}.{expected}` is missing \
                                     (indices start at 0)"
                                ),
                            ));
                        }
                        let ipath = format!("{path}.{index}");
                        list.push(match (elem, item) {
                            (Elem::Scalar(_), Slot::Scalar(v)) => v,
                            (Elem::Object(idx), Slot::Object(inner)) => {
                                Value::Object(self.flat_finish_object(idx, inner, &ipath)?)
                            }
                            _ => return Err(conflict_at(&ipath)),
                        });
                    }
                    Value::Array(list)
                }
                _ => return Err(conflict_at(&path)),
            };
            out.insert(name, value);
        }
        check_required(schema, prefix, |name| out.contains_key(name))?;
        Ok(out)
    }
}

fn parse_object(
    owner: &str,
    obj: &Value,
    names: &HashMap<&str, usize>,
) -> Result<ObjectSchema, String> {
    let members = obj
        .get("members")
        .and_then(Value::as_object)
        .ok_or_else(|| format!("schema: {owner} has no \"members\" object"))?;
    let mut out = ObjectSchema::default();
    for (name, m) in members {
        let here = format!("{owner}.{name}");
        let field = |k: &str| m.get(k).and_then(Value::as_str);
        let required = match m.get("required") {
            None => false,
            Some(v) => v
                .as_bool()
                .ok_or_else(|| format!("schema: {here}: \"required\" is not a bool"))?,
        };
        let object_ref = || -> Result<usize, String> {
            let target =
                field("object").ok_or_else(|| format!("schema: {here}: missing \"object\""))?;
            names
                .get(target)
                .copied()
                .ok_or_else(|| format!("schema: {here}: unknown structure {target}"))
        };
        let ty = match field("type") {
            Some("object") => Ty::Object(object_ref()?),
            Some("list") => match field("element") {
                Some("object") => Ty::List(Elem::Object(object_ref()?)),
                Some(s) => {
                    Ty::List(Elem::Scalar(ScalarType::parse(s).ok_or_else(|| {
                        format!("schema: {here}: unknown element type {s}")
                    })?))
                }
                None => return Err(format!("schema: {here}: list without \"element\"")),
            },
            Some(s) => Ty::Scalar(
                ScalarType::parse(s).ok_or_else(|| format!("schema: {here}: unknown type {s}"))?,
            ),
            None => return Err(format!("schema: {here}: missing \"type\"")),
        };
        out.members.insert(name.clone(), Member { ty, required });
    }
    Ok(out)
}

/// One flattened key split at the dots; `ends[i]` is the byte length of the prefix up to and
/// including segment `i`.
struct FlatKey<'a> {
    key: &'a str,
    segs: &'a [&'a str],
    ends: &'a [usize],
}

impl FlatKey<'_> {
    fn prefix(&self, i: usize) -> &str {
        &self.key[..self.ends[i]]
    }

    /// Parses segment `i` as a list index of the list at segment `i - 1`.
    fn index(&self, i: usize) -> Result<usize, ParamError> {
        let seg = self.segs[i];
        let list = self.prefix(i - 1);
        if seg.is_empty()
            || !seg.bytes().all(|b| b.is_ascii_digit())
            || (seg.len() > 1 && seg.starts_with('0'))
        {
            return Err(ParamError::invalid(
                self.key,
                format!(
                    "The parameter `{}`: `{}` is not a list index of `{list}` (expected 0, 1, …)",
                    truncate(self.key),
                    truncate(seg)
                ),
            ));
        }
        match seg.parse::<usize>() {
            Ok(n) if seg.len() <= 6 && n <= MAX_LIST_INDEX => Ok(n),
            _ => Err(ParamError::invalid_value(
                self.key,
                format!(
                    "The parameter `{}`: list index {} is larger than the limit of {MAX_LIST_INDEX}",
                    truncate(self.key),
                    truncate(seg)
                ),
            )),
        }
    }

    fn not_container(&self, i: usize, t: ScalarType) -> ParamError {
        ParamError::invalid(
            self.key,
            format!(
                "The parameter `{}` expects {} and has no members, got `{}`",
                self.prefix(i),
                t.expects(),
                truncate(self.key)
            ),
        )
    }

    fn needs_members(&self, i: usize) -> ParamError {
        let here = self.prefix(i);
        ParamError::invalid(
            self.key,
            format!("The parameter `{here}` is an object; send its members as `{here}.<Member>`"),
        )
    }

    fn conflict(&self, i: usize) -> ParamError {
        conflict_at(self.prefix(i))
    }
}

/// Collected flattened values before list contiguity and required members are checked.
enum Slot {
    Scalar(Value),
    Object(BTreeMap<String, Slot>),
    List(BTreeMap<usize, Slot>),
}

fn put_scalar<K: Ord>(
    entry: Entry<'_, K, Slot>,
    value: Value,
    key: &str,
) -> Result<(), ParamError> {
    match entry {
        Entry::Vacant(v) => {
            v.insert(Slot::Scalar(value));
            Ok(())
        }
        Entry::Occupied(_) => Err(ParamError::invalid(
            key,
            format!("The parameter `{}` is given more than once", truncate(key)),
        )),
    }
}

fn conflict_at(path: &str) -> ParamError {
    ParamError::invalid(
        path,
        format!(
            "The parameter `{}` is given with conflicting structures",
            truncate(path)
        ),
    )
}

fn check_required(
    schema: &ObjectSchema,
    prefix: &str,
    present: impl Fn(&str) -> bool,
) -> Result<(), ParamError> {
    match schema
        .members
        .iter()
        .find(|(name, m)| m.required && !present(name))
    {
        Some((name, _)) => Err(ParamError::MissingParameter {
            path: join(prefix, name),
        }),
        None => Ok(()),
    }
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

/// At most `MAX_ECHO_CHARS` characters of client input, for messages.
fn truncate(s: &str) -> String {
    match s.char_indices().nth(MAX_ECHO_CHARS) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

/// A client string value quoted for a message (escaped, truncated).
fn echo(s: &str) -> String {
    match s.char_indices().nth(MAX_ECHO_CHARS) {
        Some((cut, _)) => format!("{:?}…", &s[..cut]),
        None => format!("{s:?}"),
    }
}

fn describe_json(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => echo(s),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

fn expects_error(t: ScalarType, path: &str, got: String) -> ParamError {
    let message = match t {
        ScalarType::String => format!("The parameter {path} is not a valid string"),
        _ => format!("The parameter `{path}` expects {}, got {got}", t.expects()),
    };
    ParamError::invalid_value(path, message)
}

/// Coerces a string (flattened value, or JSON string) to the declared scalar type.
fn coerce_str(t: ScalarType, s: &str, path: &str) -> Result<Value, ParamError> {
    let bad = || expects_error(t, path, echo(s));
    Ok(match t {
        ScalarType::String => Value::String(s.to_owned()),
        ScalarType::Int => Value::from(s.parse::<i64>().map_err(|_| bad())?),
        ScalarType::Uint => Value::from(s.parse::<u64>().map_err(|_| bad())?),
        ScalarType::Float => {
            // Rust also parses "inf"/"NaN"; only finite decimal numbers are accepted.
            let looks_numeric = s
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'));
            match s.parse::<f64>() {
                Ok(f) if looks_numeric => Value::Number(Number::from_f64(f).ok_or_else(bad)?),
                _ => return Err(bad()),
            }
        }
        ScalarType::Bool => {
            if s == "1" || s.eq_ignore_ascii_case("true") {
                Value::Bool(true)
            } else if s == "0" || s.eq_ignore_ascii_case("false") {
                Value::Bool(false)
            } else {
                return Err(bad());
            }
        }
    })
}

/// Coerces a JSON value to the declared scalar type (strings are coerced leniently).
fn coerce_json(t: ScalarType, v: &Value, path: &str) -> Result<Value, ParamError> {
    let n = match v {
        Value::String(s) => return coerce_str(t, s, path),
        Value::Array(_) | Value::Object(_) => {
            return Err(ParamError::invalid(
                path,
                format!(
                    "The parameter `{path}` expects {}, got {}",
                    t.expects(),
                    describe_json(v)
                ),
            ))
        }
        Value::Bool(b) if t == ScalarType::Bool => return Ok(Value::Bool(*b)),
        Value::Number(n) => n,
        _ => return Err(expects_error(t, path, describe_json(v))),
    };
    let bad = || expects_error(t, path, n.to_string());
    // Integral floats (`8000.0`) are accepted for integer members if they are in range.
    let integral = n.as_f64().filter(|f| f.is_finite() && f.fract() == 0.0);
    Ok(match t {
        ScalarType::String => return Err(bad()),
        ScalarType::Int => match (n.as_i64(), integral) {
            (Some(i), _) => Value::from(i),
            (None, Some(f))
                if n.is_f64()
                    && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f) =>
            {
                Value::from(f as i64)
            }
            _ => return Err(bad()),
        },
        ScalarType::Uint => match (n.as_u64(), integral) {
            (Some(u), _) => Value::from(u),
            (None, Some(f)) if n.is_f64() && (0.0..1.844_674_407_370_955_2e19).contains(&f) => {
                Value::from(f as u64)
            }
            _ => return Err(bad()),
        },
        ScalarType::Float => Value::Number(n.as_f64().and_then(Number::from_f64).ok_or_else(bad)?),
        ScalarType::Bool => match n.as_u64() {
            Some(1) => Value::Bool(true),
            Some(0) => Value::Bool(false),
            _ => return Err(bad()),
        },
    })
}

/// Rejects JSON nested deeper than `MAX_DEPTH` before it is parsed (cheap byte scan).
fn check_json_depth(body: &[u8]) -> Result<(), ParamError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in body {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(ParamError::invalid(
                        "",
                        format!("The request body is nested deeper than {MAX_DEPTH} levels"),
                    ));
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// A `serde_json::Value` whose objects must not repeat a key (serde_json keeps the last one).
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        StrictValue::deserialize(d).map(|v| v.0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let StrictValue(v) = access.next_value()?;
            if out.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "duplicate parameter `{}`",
                    truncate(&key)
                )));
            }
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // Bodies and queries verbatim from vectors/tencent-golden.json (tencentcloud-sdk-python
    // 3.0.1416): TC3 POST JSON, TC3 GET query, v1 HmacSHA256 POST form, v1 HmacSHA1 GET query.
    const JOIN_BATCH_JSON: &str = "{\"GameServerSessionId\": \"qcs::gse:local::gameserversession/fleet-1/gssess-1\", \"PlayerIds\": [\"p1\", \"p2\"], \"PlayerDataMap\": {\"Key\": \"p1\", \"Value\": \"lvl=3\"}}";
    const JOIN_BATCH_TC3_QUERY: &str = "GameServerSessionId=qcs%3A%3Agse%3Alocal%3A%3Agameserversession%2Ffleet-1%2Fgssess-1&PlayerIds.0=p1&PlayerIds.1=p2&PlayerDataMap.Key=p1&PlayerDataMap.Value=lvl%3D3";
    const JOIN_BATCH_V1_FORM: &str = "GameServerSessionId=qcs%3A%3Agse%3Alocal%3A%3Agameserversession%2Ffleet-1%2Fgssess-1&PlayerIds.0=p1&PlayerIds.1=p2&PlayerDataMap.Key=p1&PlayerDataMap.Value=lvl%3D3&Action=JoinGameServerSessionBatch&RequestClient=SDK_PYTHON_3.0.1416&Nonce=1234567890&Timestamp=1700000000&Version=2019-11-12&Region=ap-shanghai&SecretId=AKIDEXAMPLEEXAMPLEEXAMPLE&SignatureMethod=HmacSHA256&Language=zh-CN&Signature=KkThTikyBHX6pJi3lXo%2FCs5Gk3QnYoy5FiZt0bRD4wM%3D";
    const JOIN_BATCH_V1_QUERY: &str = "GameServerSessionId=qcs%3A%3Agse%3Alocal%3A%3Agameserversession%2Ffleet-1%2Fgssess-1&PlayerIds.0=p1&PlayerIds.1=p2&PlayerDataMap.Key=p1&PlayerDataMap.Value=lvl%3D3&Action=JoinGameServerSessionBatch&RequestClient=SDK_PYTHON_3.0.1416&Nonce=1234567890&Timestamp=1700000000&Version=2019-11-12&Region=ap-shanghai&SecretId=AKIDEXAMPLEEXAMPLEEXAMPLE&SignatureMethod=HmacSHA1&Language=zh-CN&Signature=I1S4WP6CwaoCXZBOtqgTOCjULZE%3D";
    const END_JSON: &str = "{\"IpAddress\": \"10.0.0.5\", \"Port\": 7777}";
    const END_V1_FORM: &str = "IpAddress=10.0.0.5&Port=7777&Action=EndGameServerSessionAndProcess&RequestClient=SDK_PYTHON_3.0.1416&Nonce=1234567890&Timestamp=1700000000&Version=2019-11-12&Region=ap-shanghai&SecretId=AKIDEXAMPLEEXAMPLEEXAMPLE&SignatureMethod=HmacSHA256&Language=zh-CN&Signature=gsOxpx3eda%2BH2DCQ3rzlZH5PtOlPNt0XZUXwG4j3kfo%3D";

    fn gse() -> &'static ApiSchema {
        ApiSchema::gse()
    }

    fn flat(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn flat_err(action: &str, pairs: &[(&str, &str)]) -> ParamError {
        gse().decode_flat(action, &flat(pairs)).unwrap_err()
    }

    fn json_err(action: &str, body: &str) -> ParamError {
        gse().decode_json(action, body.as_bytes()).unwrap_err()
    }

    #[test]
    fn params_embedded_schema_lists_all_gse_actions() {
        let s = gse();
        assert_eq!(s.service(), "gse");
        assert_eq!(s.version(), "2019-11-12");
        assert_eq!(s.actions().count(), 74);
        for a in [
            "JoinGameServerSessionBatch",
            "JoinGameServerSession",
            "EndGameServerSessionAndProcess",
            "CreateFleet",
            "UpdateBucketCORSOpt",
            "StartGameServerSessionPlacement",
        ] {
            assert!(s.has_action(a), "{a}");
        }
        assert!(!s.has_action("KillSession"));
        assert!(!s.has_action("createfleet"));
        let e = s.decode_json("NoSuchAction", b"{}").unwrap_err();
        assert_eq!(e.code(), "InvalidAction");
        // Every action decodes an empty request unless it has required members.
        for a in s.actions() {
            match s.decode_json(a, b"{}") {
                Ok(v) => assert_eq!(v, json!({})),
                Err(e) => assert_eq!(e.code(), "MissingParameter", "{a}: {e}"),
            }
            let flat_result = s.decode_flat(a, &[]);
            assert_eq!(
                flat_result.as_ref().err().map(ParamError::code),
                s.decode_json(a, b"").as_ref().err().map(ParamError::code)
            );
        }
    }

    #[test]
    fn params_join_batch_json_and_flat_agree() {
        let s = gse();
        let action = "JoinGameServerSessionBatch";
        let expected = json!({
            "GameServerSessionId": "qcs::gse:local::gameserversession/fleet-1/gssess-1",
            "PlayerIds": ["p1", "p2"],
            "PlayerDataMap": {"Key": "p1", "Value": "lvl=3"}
        });
        let from_json = s.decode_json(action, JOIN_BATCH_JSON.as_bytes()).unwrap();
        assert_eq!(from_json, expected);
        for raw in [
            JOIN_BATCH_TC3_QUERY,
            JOIN_BATCH_V1_FORM,
            JOIN_BATCH_V1_QUERY,
        ] {
            let params: Vec<(String, String)> = form_urlencoded::parse(raw.as_bytes())
                .into_owned()
                .collect();
            assert_eq!(s.decode_flat(action, &params).unwrap(), from_json, "{raw}");
            assert_eq!(
                s.decode_urlencoded(action, raw.as_bytes()).unwrap(),
                from_json
            );
        }
    }

    #[test]
    fn params_end_session_port_is_a_number() {
        let s = gse();
        let action = "EndGameServerSessionAndProcess";
        let expected = json!({"IpAddress": "10.0.0.5", "Port": 7777});
        assert_eq!(
            s.decode_json(action, END_JSON.as_bytes()).unwrap(),
            expected
        );
        assert_eq!(
            s.decode_urlencoded(action, END_V1_FORM.as_bytes()).unwrap(),
            expected
        );
        // A JSON string for an int member is coerced (lenient), as is an integral float.
        let v = s
            .decode_json(action, br#"{"IpAddress": "10.0.0.5", "Port": "7777"}"#)
            .unwrap();
        assert_eq!(v, expected);
        assert!(v["Port"].is_i64());
        let v = s.decode_json(action, br#"{"Port": 7777.0}"#).unwrap();
        assert_eq!(v, json!({"Port": 7777}));
    }

    #[test]
    fn params_create_fleet_nested_flat() {
        let s = gse();
        let params = flat(&[
            ("Action", "CreateFleet"),
            ("Name", "fleet a"),
            ("AssetId", "asset-12345678"),
            (
                "RuntimeConfiguration.ServerProcesses.0.LaunchPath",
                "/local/game/x",
            ),
            (
                "RuntimeConfiguration.ServerProcesses.0.Parameters",
                "-port 7000",
            ),
            (
                "RuntimeConfiguration.ServerProcesses.0.ConcurrentExecutions",
                "2",
            ),
            (
                "RuntimeConfiguration.ServerProcesses.1.LaunchPath",
                "/local/game/y",
            ),
            (
                "RuntimeConfiguration.ServerProcesses.1.ConcurrentExecutions",
                "1",
            ),
            (
                "RuntimeConfiguration.GameServerSessionActivationTimeoutSeconds",
                "300",
            ),
            ("InboundPermissions.0.FromPort", "7000"),
            ("InboundPermissions.0.ToPort", "7100"),
            ("InboundPermissions.0.IpRange", "0.0.0.0/0"),
            ("InboundPermissions.0.Protocol", "TCP"),
            ("GameServerSessionProtectionTimeLimit", "-5"),
            ("Tags.0.Key", "k"),
            ("Tags.0.Value", "v"),
            ("Region", "ap-shanghai"),
        ]);
        let expected = json!({
            "Name": "fleet a",
            "AssetId": "asset-12345678",
            "RuntimeConfiguration": {
                "ServerProcesses": [
                    {"LaunchPath": "/local/game/x", "Parameters": "-port 7000", "ConcurrentExecutions": 2},
                    {"LaunchPath": "/local/game/y", "ConcurrentExecutions": 1}
                ],
                "GameServerSessionActivationTimeoutSeconds": 300
            },
            "InboundPermissions": [
                {"FromPort": 7000, "ToPort": 7100, "IpRange": "0.0.0.0/0", "Protocol": "TCP"}
            ],
            "GameServerSessionProtectionTimeLimit": -5,
            "Tags": [{"Key": "k", "Value": "v"}]
        });
        let v = s.decode_flat("CreateFleet", &params).unwrap();
        assert_eq!(v, expected);
        assert_eq!(
            s.decode_json("CreateFleet", expected.to_string().as_bytes())
                .unwrap(),
            expected
        );
        // Order of the wire pairs does not matter.
        let mut reversed = params.clone();
        reversed.reverse();
        assert_eq!(s.decode_flat("CreateFleet", &reversed).unwrap(), expected);
    }

    #[test]
    fn params_scalar_coercion() {
        let s = gse();
        // A schema of our own covers every scalar type (GSE requests have few bools and floats).
        let schema = ApiSchema::from_json(
            r#"{"service": "t", "version": "2000-01-01", "actions": ["A"],
                "requests": {"A": {"members": {
                    "B": {"type": "bool", "required": false},
                    "I": {"type": "int", "required": false},
                    "U": {"type": "uint", "required": false},
                    "F": {"type": "float", "required": false},
                    "S": {"type": "string", "required": false},
                    "L": {"type": "list", "required": false, "element": "int"},
                    "O": {"type": "object", "required": false, "object": "X"}}}},
                "objects": {"X": {"members": {"Flag": {"type": "bool", "required": true}}}}}"#,
        )
        .unwrap();
        for (text, b) in [
            ("true", true),
            ("True", true),
            ("1", true),
            ("false", false),
            ("False", false),
            ("0", false),
        ] {
            let v = schema.decode_flat("A", &flat(&[("B", text)])).unwrap();
            assert_eq!(v, json!({"B": b}), "{text}");
            let body = format!(r#"{{"B": "{text}"}}"#);
            assert_eq!(
                schema.decode_json("A", body.as_bytes()).unwrap(),
                json!({"B": b})
            );
        }
        assert_eq!(
            schema
                .decode_json("A", br#"{"B": true, "I": -3, "U": 3, "F": 1.5, "S": "x"}"#)
                .unwrap(),
            json!({"B": true, "I": -3, "U": 3, "F": 1.5, "S": "x"})
        );
        assert_eq!(
            schema
                .decode_flat(
                    "A",
                    &flat(&[
                        ("I", "-9223372036854775808"),
                        ("U", "18446744073709551615"),
                        ("F", "2.5e3"),
                        ("S", "")
                    ])
                )
                .unwrap(),
            json!({"I": i64::MIN, "U": u64::MAX, "F": 2500.0, "S": ""})
        );
        assert_eq!(
            schema
                .decode_flat(
                    "A",
                    &flat(&[("L.0", "5"), ("L.1", "-6"), ("O.Flag", "True")])
                )
                .unwrap(),
            json!({"L": [5, -6], "O": {"Flag": true}})
        );
        // Junk values.
        for (k, v) in [
            ("B", "yes"),
            ("B", "2"),
            ("B", ""),
            ("I", "abc"),
            ("I", "1.5"),
            ("I", "9223372036854775808"),
            ("I", ""),
            ("U", "-1"),
            ("U", "1e3"),
            ("F", "NaN"),
            ("F", "inf"),
            ("F", "1e999"),
            ("F", "abc"),
            ("L.0", "x"),
        ] {
            let e = schema.decode_flat("A", &flat(&[(k, v)])).unwrap_err();
            assert_eq!(e.code(), "InvalidParameterValue", "{k}={v}: {e}");
            assert_eq!(e.path(), k);
        }
        for body in [
            r#"{"B": 2}"#,
            r#"{"B": "maybe"}"#,
            r#"{"I": 1.5}"#,
            r#"{"I": true}"#,
            r#"{"I": 9223372036854775808}"#,
            r#"{"U": -1}"#,
            r#"{"U": "-1"}"#,
            r#"{"S": 5}"#,
            r#"{"S": false}"#,
            r#"{"F": "inf"}"#,
            r#"{"L": [1, null]}"#,
            r#"{"L": [1, "x"]}"#,
        ] {
            let e = schema.decode_json("A", body.as_bytes()).unwrap_err();
            assert_eq!(e.code(), "InvalidParameterValue", "{body}: {e}");
        }
        let e = s
            .decode_flat("DescribeGameServerSessions", &flat(&[("Limit", "abc")]))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "The parameter `Limit` expects an unsigned integer, got \"abc\""
        );
        let e = s
            .decode_flat(
                "CreateFleet",
                &flat(&[("GameServerSessionProtectionTimeLimit", "abc")]),
            )
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "The parameter `GameServerSessionProtectionTimeLimit` expects an integer, got \"abc\""
        );
        let e = json_err(
            "JoinGameServerSessionBatch",
            r#"{"GameServerSessionId": "g", "PlayerIds": ["a", "b", "c", 4]}"#,
        );
        assert_eq!(e.code(), "InvalidParameterValue");
        assert_eq!(
            e.to_string(),
            "The parameter PlayerIds.3 is not a valid string"
        );
    }

    #[test]
    fn params_unknown_parameter() {
        let e = flat_err(
            "JoinGameServerSession",
            &[
                ("GameServerSessionId", "g"),
                ("PlayerId", "p"),
                ("FooBar", "1"),
            ],
        );
        assert_eq!(e.code(), "UnknownParameter");
        assert_eq!(
            e.to_string(),
            "Unknown parameter FooBar for action JoinGameServerSession"
        );
        let e = json_err(
            "JoinGameServerSession",
            r#"{"GameServerSessionId": "g", "PlayerId": "p", "FooBar": null}"#,
        );
        assert_eq!(
            e.to_string(),
            "Unknown parameter FooBar for action JoinGameServerSession"
        );
        // Nested, and names are case-sensitive.
        let e = flat_err(
            "CreateFleet",
            &[("RuntimeConfiguration.ServerProcesses.0.launchPath", "x")],
        );
        assert_eq!(e.code(), "UnknownParameter");
        assert_eq!(
            e.path(),
            "RuntimeConfiguration.ServerProcesses.0.launchPath"
        );
        let e = json_err(
            "CreateFleet",
            r#"{"RuntimeConfiguration": {"Bogus": {"a": [1]}}}"#,
        );
        assert_eq!(e.code(), "UnknownParameter");
        assert_eq!(
            e.to_string(),
            "Unknown parameter RuntimeConfiguration.Bogus for action CreateFleet"
        );
        // Common parameters are only skipped at top level and in flattened form.
        let e = flat_err("DeleteFleet", &[("FleetId", "f"), ("Tags.0.Region", "x")]);
        assert_eq!(e.code(), "UnknownParameter");
        let e = json_err(
            "DeleteFleet",
            r#"{"FleetId": "f", "Region": "ap-shanghai"}"#,
        );
        assert_eq!(e.code(), "UnknownParameter");
        assert!(gse()
            .decode_flat(
                "DeleteFleet",
                &flat(&[("FleetId", "f"), ("Region", "r"), ("Token", "t")])
            )
            .is_ok());
    }

    #[test]
    fn params_missing_required() {
        let e = flat_err("JoinGameServerSession", &[("PlayerId", "p")]);
        assert_eq!(e.code(), "MissingParameter");
        assert_eq!(
            e.to_string(),
            "Missing required parameter GameServerSessionId"
        );
        // null counts as absent.
        let e = json_err(
            "JoinGameServerSession",
            r#"{"GameServerSessionId": null, "PlayerId": "p"}"#,
        );
        assert_eq!(
            e.to_string(),
            "Missing required parameter GameServerSessionId"
        );
        // An empty list is omitted in flattened form: a required list is then missing.
        let e = flat_err(
            "JoinGameServerSessionBatch",
            &[("GameServerSessionId", "g")],
        );
        assert_eq!(e.to_string(), "Missing required parameter PlayerIds");
        // ... while in JSON the empty list is present (its length is the handler's business).
        assert_eq!(
            gse()
                .decode_json(
                    "JoinGameServerSessionBatch",
                    br#"{"GameServerSessionId": "g", "PlayerIds": []}"#
                )
                .unwrap(),
            json!({"GameServerSessionId": "g", "PlayerIds": []})
        );
        // Required members of nested structures are checked with their full path.
        let e = flat_err("CreateFleet", &[("Tags.0.Key", "k")]);
        assert_eq!(e.to_string(), "Missing required parameter Tags.0.Value");
        let e = json_err(
            "CreateFleet",
            r#"{"Tags": [{"Key": "k", "Value": "v"}, {"Key": "k2"}]}"#,
        );
        assert_eq!(e.to_string(), "Missing required parameter Tags.1.Value");
        let e = json_err("CreateFleet", r#"{"SystemDiskInfo": {}}"#);
        assert_eq!(e.code(), "MissingParameter");
        assert!(e.path().starts_with("SystemDiskInfo."));
    }

    #[test]
    fn params_wrong_structure() {
        let b = "JoinGameServerSessionBatch";
        for body in [
            r#"{"GameServerSessionId": "g", "PlayerIds": {"Key": "p1"}}"#,
            r#"{"GameServerSessionId": "g", "PlayerIds": "p1"}"#,
            r#"{"GameServerSessionId": ["g"], "PlayerIds": ["p1"]}"#,
            r#"{"GameServerSessionId": "g", "PlayerIds": ["p1"], "PlayerDataMap": ["p1"]}"#,
            r#"{"GameServerSessionId": "g", "PlayerIds": [["p1"]]}"#,
            r#"{"GameServerSessionId": "g", "PlayerIds": ["p1"], "PlayerDataMap": "x"}"#,
            r#"{"GameServerSessionId": "g", "GameServerSessionId": "h", "PlayerIds": ["p1"]}"#,
            r#"["GameServerSessionId"]"#,
            r#""x""#,
            "null",
            r#"{"GameServerSessionId": "g""#,
            r#"{"GameServerSessionId": "g"} x"#,
            "\u{feff}{}",
        ] {
            let e = json_err(b, body);
            assert_eq!(e.code(), "InvalidParameter", "{body}: {e}");
        }
        let e = json_err(
            b,
            r#"{"GameServerSessionId": "g", "PlayerIds": {"Key": "p1"}}"#,
        );
        assert_eq!(
            e.to_string(),
            "The parameter `PlayerIds` expects a list, got an object"
        );
        for pairs in [
            &[("GameServerSessionId", "g"), ("PlayerIds", "p1")][..],
            &[("GameServerSessionId", "g"), ("PlayerIds.Key", "p1")],
            &[("GameServerSessionId", "g"), ("PlayerIds.0.X", "p1")],
            &[("GameServerSessionId", "g"), ("PlayerIds.-1", "p1")],
            &[("GameServerSessionId", "g"), ("PlayerIds.01", "p1")],
            &[("GameServerSessionId", "g"), ("PlayerIds.", "p1")],
            &[
                ("GameServerSessionId", "g"),
                ("PlayerIds.0", "p1"),
                ("PlayerIds.0", "p2"),
            ],
            &[("GameServerSessionId", "g"), ("GameServerSessionId", "g")],
            &[("GameServerSessionId.0", "g"), ("PlayerIds.0", "p1")],
            &[
                ("GameServerSessionId", "g"),
                ("PlayerIds.0", "p1"),
                ("PlayerDataMap", "x"),
            ],
        ] {
            let e = flat_err(b, pairs);
            assert_eq!(e.code(), "InvalidParameter", "{pairs:?}: {e}");
        }
        let e = flat_err(
            "CreateFleet",
            &[("RuntimeConfiguration.ServerProcesses.0", "x")],
        );
        assert_eq!(e.code(), "InvalidParameter");
        let e = flat_err("CreateFleet", &[("RuntimeConfiguration", "x")]);
        assert_eq!(e.code(), "InvalidParameter");
    }

    #[test]
    fn params_non_contiguous_indices() {
        let b = "JoinGameServerSessionBatch";
        let e = flat_err(
            b,
            &[
                ("GameServerSessionId", "g"),
                ("PlayerIds.0", "a"),
                ("PlayerIds.2", "c"),
            ],
        );
        assert_eq!(e.code(), "InvalidParameter");
        assert_eq!(e.path(), "PlayerIds");
        assert!(e.to_string().contains("PlayerIds.1"), "{e}");
        let e = flat_err(b, &[("GameServerSessionId", "g"), ("PlayerIds.1", "a")]);
        assert_eq!(e.code(), "InvalidParameter");
        let e = flat_err(
            "CreateFleet",
            &[
                ("RuntimeConfiguration.ServerProcesses.0.LaunchPath", "a"),
                ("RuntimeConfiguration.ServerProcesses.5.LaunchPath", "b"),
            ],
        );
        assert_eq!(e.code(), "InvalidParameter");
        assert_eq!(e.path(), "RuntimeConfiguration.ServerProcesses");
        // Out of order but contiguous is fine.
        let v = gse()
            .decode_flat(
                b,
                &flat(&[
                    ("PlayerIds.1", "b"),
                    ("GameServerSessionId", "g"),
                    ("PlayerIds.0", "a"),
                ]),
            )
            .unwrap();
        assert_eq!(v["PlayerIds"], json!(["a", "b"]));
    }

    #[test]
    fn params_hostile_inputs() {
        let s = gse();
        let b = "JoinGameServerSessionBatch";
        // Huge or overlong indices.
        for idx in [
            "10001",
            "99999999999999999999999999",
            "18446744073709551616",
        ] {
            let key = format!("PlayerIds.{idx}");
            let e = flat_err(b, &[("GameServerSessionId", "g"), (key.as_str(), "x")]);
            assert_eq!(e.code(), "InvalidParameterValue", "{idx}: {e}");
        }
        let e = flat_err(b, &[("GameServerSessionId", "g"), ("PlayerIds.10000", "x")]);
        assert_eq!(e.code(), "InvalidParameter"); // allowed index, but not contiguous
                                                  // Deep flattened keys.
        let deep = vec!["RuntimeConfiguration"; 100].join(".");
        let e = flat_err("CreateFleet", &[(deep.as_str(), "x")]);
        assert_eq!(e.code(), "InvalidParameter");
        let deep = format!("RuntimeConfiguration.ServerProcesses.0{}", ".0".repeat(20));
        assert_eq!(
            flat_err("CreateFleet", &[(deep.as_str(), "x")]).code(),
            "UnknownParameter"
        );
        let dots = ".".repeat(1_000_000);
        assert_eq!(
            flat_err(b, &[(dots.as_str(), "x")]).code(),
            "InvalidParameter"
        );
        // The largest list that is allowed still decodes.
        let mut many: Vec<(String, String)> = (0..=MAX_LIST_INDEX)
            .rev()
            .map(|i| (format!("PlayerIds.{i}"), format!("p{i}")))
            .collect();
        many.push(("GameServerSessionId".into(), "g".into()));
        let v = s.decode_flat(b, &many).unwrap();
        assert_eq!(v["PlayerIds"].as_array().unwrap().len(), MAX_LIST_INDEX + 1);
        assert_eq!(v["PlayerIds"][MAX_LIST_INDEX], json!("p10000"));
        // Deep JSON, inside a known and an unknown member, and as a bare value.
        for depth in [33usize, 200, 100_000] {
            for body in [
                format!(
                    r#"{{"PlayerIds": {}{}}}"#,
                    "[".repeat(depth),
                    "]".repeat(depth)
                ),
                format!(
                    r#"{{"Nope": {}{}}}"#,
                    "{\"a\":".repeat(depth),
                    "}".repeat(depth)
                ),
                "[".repeat(depth),
            ] {
                let e = s.decode_json(b, body.as_bytes()).unwrap_err();
                assert_eq!(e.code(), "InvalidParameter", "depth {depth}");
            }
        }
        // Brackets inside strings do not count as nesting.
        let body = format!(
            r#"{{"GameServerSessionId": "{}", "PlayerIds": ["\"[{{"]}}"#,
            "[".repeat(100)
        );
        assert!(s.decode_json(b, body.as_bytes()).is_ok());
        // Too many JSON list elements.
        let body = format!(
            r#"{{"GameServerSessionId": "g", "PlayerIds": [{}"x"]}}"#,
            "\"x\",".repeat(MAX_LIST_INDEX + 1)
        );
        assert_eq!(
            s.decode_json(b, body.as_bytes()).unwrap_err().code(),
            "InvalidParameterValue"
        );
        // Invalid UTF-8, control bytes, huge numbers, junk.
        for body in [
            &b"\xff\xfe{}"[..],
            b"{\"GameServerSessionId\": \"\xc3\x28\"}",
            b"{\"Port\": 1e999}",
            b"\x00",
            b"{",
            b"}",
            b"{\"a\\",
        ] {
            let e = s
                .decode_json("EndGameServerSessionAndProcess", body)
                .unwrap_err();
            assert_eq!(e.code(), "InvalidParameter", "{body:?}: {e}");
        }
        assert_eq!(
            s.decode_json(
                "EndGameServerSessionAndProcess",
                b"{\"Port\": 99999999999999999999999}"
            )
            .unwrap_err()
            .code(),
            "InvalidParameterValue"
        );
        // Long values are truncated in messages.
        let long = "x".repeat(100_000);
        let e = flat_err("DescribeGameServerSessions", &[("Limit", long.as_str())]);
        assert!(e.to_string().len() < 300, "{}", e.to_string().len());
        let e = flat_err("DescribeGameServerSessions", &[(long.as_str(), "1")]);
        assert!(e.to_string().len() < 300);
        // Empty keys, odd separators, non-ASCII: errors, never panics.
        for key in [
            "",
            ".",
            "..",
            "PlayerIds..0",
            "PlayerIds.٣",
            "ü.ü",
            "PlayerDataMap.",
            "PlayerDataMap..Key",
        ] {
            let e = flat_err(b, &[(key, "v")]);
            assert!(
                matches!(e.code(), "UnknownParameter" | "InvalidParameter"),
                "{key:?}: {e}"
            );
        }
        // Empty body and whitespace count as {}.
        assert_eq!(s.decode_json("DescribeUserQuotas", b"").unwrap(), json!({}));
        assert_eq!(
            s.decode_json("DescribeUserQuotas", b" \r\n").unwrap(),
            json!({})
        );
    }

    #[test]
    fn params_random_inputs_never_panic() {
        let s = gse();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |n: usize| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((seed >> 33) as usize) % n
        };
        let segs = [
            "PlayerIds",
            "0",
            "1",
            "2",
            "10001",
            "Key",
            "Value",
            "PlayerDataMap",
            "GameServerSessionId",
            "",
            "x",
            "01",
            "RuntimeConfiguration",
            "ServerProcesses",
            "LaunchPath",
            "Tags",
            "Region",
            "ConcurrentExecutions",
            "InboundPermissions",
            "FromPort",
        ];
        let values = [
            "",
            "1",
            "true",
            "-1",
            "abc",
            "1.5",
            "False",
            "99999999999999999999",
        ];
        let tokens = [
            "{",
            "}",
            "[",
            "]",
            ",",
            ":",
            "\"PlayerIds\"",
            "\"Key\"",
            "\"RuntimeConfiguration\"",
            "\"ServerProcesses\"",
            "\"LaunchPath\"",
            "1",
            "-1",
            "1.5",
            "true",
            "null",
            "\"x\"",
            "\"",
            "\\",
            " ",
        ];
        let actions = [
            "JoinGameServerSessionBatch",
            "CreateFleet",
            "EndGameServerSessionAndProcess",
        ];
        let codes = [
            "UnknownParameter",
            "MissingParameter",
            "InvalidParameter",
            "InvalidParameterValue",
        ];
        for _ in 0..20_000 {
            let action = actions[next(actions.len())];
            let params: Vec<(String, String)> = (0..next(6))
                .map(|_| {
                    let key: Vec<&str> = (0..1 + next(5)).map(|_| segs[next(segs.len())]).collect();
                    (key.join("."), values[next(values.len())].to_owned())
                })
                .collect();
            if let Err(e) = s.decode_flat(action, &params) {
                assert!(codes.contains(&e.code()), "{params:?}: {e}");
            }
            let body: String = (0..next(24)).map(|_| tokens[next(tokens.len())]).collect();
            if let Err(e) = s.decode_json(action, body.as_bytes()) {
                assert!(codes.contains(&e.code()), "{body}: {e}");
            }
        }
    }

    #[test]
    fn params_schema_parse_errors() {
        for bad in [
            "",
            "[]",
            r#"{"service": "x"}"#,
            r#"{"service": "x", "version": "v", "actions": ["A"], "requests": {}}"#,
            r#"{"service": "x", "version": "v", "actions": [], "requests": {"A": {"members": {}}}}"#,
            r#"{"service": "x", "version": "v", "actions": ["A"], "requests": {"A": {"members": {"M": {"type": "weird"}}}}}"#,
            r#"{"service": "x", "version": "v", "actions": ["A"], "requests": {"A": {"members": {"M": {"type": "object", "object": "Nope"}}}}}"#,
            r#"{"service": "x", "version": "v", "actions": ["A"], "requests": {"A": {"members": {"M": {"type": "list"}}}}}"#,
        ] {
            assert!(ApiSchema::from_json(bad).is_err(), "{bad}");
        }
    }
}
