//! A restricted pickle reader for torch.save's `data.pkl`.
//!
//! It knows the binary opcodes (protocols 2 to 5) that torch.save and plain
//! dicts, lists, tuples, ints, floats, strings, bytes, booleans and None
//! need, and nothing else. Globals are an allow-list checked when the
//! global is named, before anything could use it:
//!
//! - `torch._utils._rebuild_tensor_v2`, which REDUCE turns into a
//!   [`TensorRef`] (a storage, an offset and a shape) after checking its
//!   arguments;
//! - `collections.OrderedDict`, which REDUCE with no arguments turns into an
//!   empty dict (torch passes one as a tensor's backward hooks);
//! - `torch.<X>Storage`, dtype tags that may only appear inside the
//!   persistent id `('storage', torch.XStorage, key, location, numel)` that
//!   BINPERSID turns into a [`Storage`].
//!
//! Any other global (`os.system`, `builtins.eval`, ...) is refused with an
//! error naming it. Nothing is ever called: REDUCE only builds data. The
//! op count, stack depth and memo size are bounded, every length is checked
//! against the bytes present before anything is read or allocated, and
//! values live in an arena, so memo references (BINGET) share a node rather
//! than copy it. Strings and storages are shared (`Arc`) wherever an op
//! reuses them, so no op allocates in proportion to an earlier op's input:
//! memory stays within a small multiple of the op count.

use std::collections::HashMap;
use std::sync::Arc;

use super::dtype::Dtype;

/// Index of a node in [`Pickle::node`].
pub type NodeId = usize;

/// A value built by the reader.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Arc<str>),
    Bytes(Vec<u8>),
    Tuple(Vec<NodeId>),
    List(Vec<NodeId>),
    /// Entries in insertion order (Python dicts keep it); duplicate keys are
    /// kept for the layout reader to refuse.
    Dict(Vec<(NodeId, NodeId)>),
    Global(Global),
    Storage(Arc<Storage>),
    Tensor(Box<TensorRef>),
}

impl Node {
    /// A short description for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Node::None => "None",
            Node::Bool(_) => "a bool",
            Node::Int(_) => "an int",
            Node::Float(_) => "a float",
            Node::Str(_) => "a string",
            Node::Bytes(_) => "bytes",
            Node::Tuple(_) => "a tuple",
            Node::List(_) => "a list",
            Node::Dict(_) => "a dict",
            Node::Global(_) => "a global",
            Node::Storage(_) => "a storage",
            Node::Tensor(_) => "a tensor",
        }
    }
}

/// The globals a pickle may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Global {
    RebuildTensorV2,
    OrderedDict,
    StorageType(Dtype),
}

impl Global {
    /// The allow-list.
    fn resolve(module: &str, name: &str) -> Option<Global> {
        match (module, name) {
            ("torch._utils", "_rebuild_tensor_v2") => Some(Global::RebuildTensorV2),
            ("collections", "OrderedDict") => Some(Global::OrderedDict),
            ("torch", class) => Dtype::from_storage_class(class).map(Global::StorageType),
            _ => None,
        }
    }
}

/// A storage reference: the zip record `<prefix>/data/<key>` holds `numel`
/// elements of `dtype`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storage {
    pub dtype: Dtype,
    pub key: Arc<str>,
    /// The device it was saved from (`cpu`, `cuda:0`); informational.
    pub location: Arc<str>,
    pub numel: u64,
}

/// A tensor: `elements(shape)` contiguous elements of `storage` from
/// element `offset`. The reader has checked that they lie within the
/// storage's declared `numel`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorRef {
    pub storage: Arc<Storage>,
    pub offset: u64,
    pub shape: Vec<u64>,
}

impl TensorRef {
    pub fn elements(&self) -> u64 {
        // Checked not to overflow when the tensor was built.
        self.shape.iter().product()
    }
}

/// Bounds on one pickle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Opcodes executed, STOP included. Each op creates at most one node,
    /// so this also bounds the arena.
    pub max_ops: usize,
    /// Values on the stack plus open MARKs.
    pub max_stack: usize,
    /// Distinct memo slots.
    pub max_memo: usize,
}

impl Default for Limits {
    /// torch.save writes about 40 ops and 15 memo slots per tensor: these
    /// allow some 25,000 tensors (today's models have about 200).
    fn default() -> Self {
        Limits {
            max_ops: 1 << 20,
            max_stack: 1 << 16,
            max_memo: 1 << 19,
        }
    }
}

/// Longest module or name line a GLOBAL may have.
const MAX_GLOBAL_LINE: usize = 1024;
/// Highest rank a tensor may have: pgq's (torch allows 64, but pgq could
/// not store such a tensor, and the bound keeps each tensor node small).
const MAX_RANK: usize = pgq_format::limits::MAX_RANK as usize;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PickleError {
    #[error(
        "op #{op} at byte {offset}: global {module}.{name} is not allowed (the allow-list is \
         torch._utils._rebuild_tensor_v2, collections.OrderedDict and the torch.*Storage \
         dtype tags; nothing in a pickle is ever called)"
    )]
    ForbiddenGlobal {
        op: usize,
        offset: usize,
        module: String,
        name: String,
    },
    #[error("op #{op} at byte {offset}: opcode {opcode:#04x} ({name}) is not supported")]
    UnsupportedOpcode {
        op: usize,
        offset: usize,
        opcode: u8,
        name: &'static str,
    },
    #[error("op #{op} at byte {offset}: {detail}")]
    Malformed {
        op: usize,
        offset: usize,
        detail: String,
    },
    #[error("op #{op} at byte {offset}: more than {limit} {what}")]
    Limit {
        op: usize,
        offset: usize,
        what: &'static str,
        limit: usize,
    },
}

/// The object a pickle builds: an arena of nodes and the root.
#[derive(Debug, Clone, PartialEq)]
pub struct Pickle {
    nodes: Vec<Node>,
    root: NodeId,
}

static NONE: Node = Node::None;

impl Pickle {
    pub fn root(&self) -> NodeId {
        self.root
    }

    /// The node `id`; every id inside a [`Pickle`] is valid, so the `None`
    /// fallback is never seen.
    pub fn node(&self, id: NodeId) -> &Node {
        self.nodes.get(id).unwrap_or(&NONE)
    }

    /// Number of nodes built.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

/// Reads a pickle with the default [`Limits`].
pub fn parse(bytes: &[u8]) -> Result<Pickle, PickleError> {
    parse_with(bytes, Limits::default())
}

/// Reads a pickle: builds its object without calling anything.
pub fn parse_with(bytes: &[u8], limits: Limits) -> Result<Pickle, PickleError> {
    let mut machine = Machine {
        input: bytes,
        pos: 0,
        op: 0,
        op_start: 0,
        nodes: Vec::new(),
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        limits,
    };
    machine.run()
}

mod op {
    pub const MARK: u8 = b'(';
    pub const STOP: u8 = b'.';
    pub const BININT: u8 = b'J';
    pub const BININT1: u8 = b'K';
    pub const BININT2: u8 = b'M';
    pub const NONE: u8 = b'N';
    pub const BINPERSID: u8 = b'Q';
    pub const REDUCE: u8 = b'R';
    pub const BINUNICODE: u8 = b'X';
    pub const EMPTY_LIST: u8 = b']';
    pub const APPEND: u8 = b'a';
    pub const GLOBAL: u8 = b'c';
    pub const APPENDS: u8 = b'e';
    pub const BINGET: u8 = b'h';
    pub const LONG_BINGET: u8 = b'j';
    pub const BINPUT: u8 = b'q';
    pub const LONG_BINPUT: u8 = b'r';
    pub const SETITEM: u8 = b's';
    pub const TUPLE: u8 = b't';
    pub const SETITEMS: u8 = b'u';
    pub const EMPTY_DICT: u8 = b'}';
    pub const EMPTY_TUPLE: u8 = b')';
    pub const BINFLOAT: u8 = b'G';
    pub const BINBYTES: u8 = b'B';
    pub const SHORT_BINBYTES: u8 = b'C';
    pub const PROTO: u8 = 0x80;
    pub const TUPLE1: u8 = 0x85;
    pub const TUPLE2: u8 = 0x86;
    pub const TUPLE3: u8 = 0x87;
    pub const NEWTRUE: u8 = 0x88;
    pub const NEWFALSE: u8 = 0x89;
    pub const LONG1: u8 = 0x8A;
    pub const SHORT_BINUNICODE: u8 = 0x8C;
    pub const BINUNICODE8: u8 = 0x8D;
    pub const BINBYTES8: u8 = 0x8E;
    pub const STACK_GLOBAL: u8 = 0x93;
    pub const MEMOIZE: u8 = 0x94;
    pub const FRAME: u8 = 0x95;
}

/// Names of the opcodes this reader refuses, for error messages.
fn unsupported_name(opcode: u8) -> &'static str {
    match opcode {
        b'0' => "POP",
        b'1' => "POP_MARK",
        b'2' => "DUP",
        b'F' => "FLOAT",
        b'I' => "INT",
        b'L' => "LONG",
        b'P' => "PERSID",
        b'S' => "STRING",
        b'T' => "BINSTRING",
        b'U' => "SHORT_BINSTRING",
        b'V' => "UNICODE",
        b'b' => "BUILD",
        b'd' => "DICT",
        b'g' => "GET",
        b'i' => "INST",
        b'l' => "LIST",
        b'o' => "OBJ",
        b'p' => "PUT",
        0x81 => "NEWOBJ",
        0x82 => "EXT1",
        0x83 => "EXT2",
        0x84 => "EXT4",
        0x8B => "LONG4",
        0x8F => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        0x92 => "NEWOBJ_EX",
        0x96 => "BYTEARRAY8",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        _ => "unknown opcode",
    }
}

struct Machine<'a> {
    input: &'a [u8],
    pos: usize,
    /// Index of the op being run, and where it starts: every error names
    /// both.
    op: usize,
    op_start: usize,
    nodes: Vec<Node>,
    stack: Vec<NodeId>,
    /// Stack heights at each open MARK.
    marks: Vec<usize>,
    memo: HashMap<u32, NodeId>,
    limits: Limits,
}

type PResult<T> = std::result::Result<T, PickleError>;

impl<'a> Machine<'a> {
    fn malformed(&self, detail: impl Into<String>) -> PickleError {
        PickleError::Malformed {
            op: self.op,
            offset: self.op_start,
            detail: detail.into(),
        }
    }

    fn limit(&self, what: &'static str, limit: usize) -> PickleError {
        PickleError::Limit {
            op: self.op,
            offset: self.op_start,
            what,
            limit,
        }
    }

    fn run(&mut self) -> PResult<Pickle> {
        loop {
            if self.op >= self.limits.max_ops {
                return Err(self.limit("ops", self.limits.max_ops));
            }
            self.op_start = self.pos;
            let code = self
                .take(1)
                .map_err(|_| self.malformed("the pickle ends without STOP"))?;
            let code = code.first().copied().unwrap_or(op::STOP);
            if code == op::STOP {
                return self.stop();
            }
            self.step(code)?;
            self.op += 1;
        }
    }

    /// STOP: exactly one value left, no open MARK, no trailing bytes.
    fn stop(&mut self) -> PResult<Pickle> {
        if !self.marks.is_empty() {
            return Err(self.malformed("STOP with an open MARK"));
        }
        let [root] = self.stack[..] else {
            return Err(self.malformed(format!(
                "STOP with {} values on the stack (want 1)",
                self.stack.len()
            )));
        };
        if self.pos != self.input.len() {
            return Err(
                self.malformed(format!("{} bytes follow STOP", self.input.len() - self.pos))
            );
        }
        Ok(Pickle {
            nodes: std::mem::take(&mut self.nodes),
            root,
        })
    }

    fn step(&mut self, code: u8) -> PResult<()> {
        match code {
            op::PROTO => {
                let version = self.u8()?;
                if !(2..=5).contains(&version) {
                    return Err(
                        self.malformed(format!("protocol {version} (this reader knows 2 to 5)"))
                    );
                }
            }
            op::FRAME => {
                // Frames only group ops for buffered reading; the whole
                // pickle is in memory, so only the length is checked.
                let len = self.u64()?;
                if len > (self.input.len() - self.pos) as u64 {
                    return Err(self.malformed(format!("a {len}-byte frame overruns the pickle")));
                }
            }
            op::MARK => {
                self.check_depth()?;
                self.marks.push(self.stack.len());
            }
            op::EMPTY_DICT => self.push(Node::Dict(Vec::new()))?,
            op::EMPTY_LIST => self.push(Node::List(Vec::new()))?,
            op::EMPTY_TUPLE => self.push(Node::Tuple(Vec::new()))?,
            op::TUPLE => {
                let items = self.pop_mark()?;
                self.push(Node::Tuple(items))?;
            }
            op::TUPLE1 | op::TUPLE2 | op::TUPLE3 => {
                let n = usize::from(code - op::TUPLE1) + 1;
                let items = self.pop_n(n)?;
                self.push(Node::Tuple(items))?;
            }
            op::SETITEM => {
                let value = self.pop()?;
                let key = self.pop()?;
                self.dict_on_top()?.push((key, value));
            }
            op::SETITEMS => {
                let items = self.pop_mark()?;
                if items.len() % 2 != 0 {
                    return Err(self.malformed("SETITEMS with an odd number of values"));
                }
                let pairs: Vec<_> = items
                    .chunks_exact(2)
                    .filter_map(|pair| match *pair {
                        [key, value] => Some((key, value)),
                        _ => None,
                    })
                    .collect();
                self.dict_on_top()?.extend(pairs);
            }
            op::APPEND => {
                let value = self.pop()?;
                self.list_on_top()?.push(value);
            }
            op::APPENDS => {
                let items = self.pop_mark()?;
                self.list_on_top()?.extend(items);
            }
            op::BININT => {
                let v = i32::from_le_bytes(self.array()?);
                self.push(Node::Int(i64::from(v)))?;
            }
            op::BININT1 => {
                let v = self.u8()?;
                self.push(Node::Int(i64::from(v)))?;
            }
            op::BININT2 => {
                let v = u16::from_le_bytes(self.array()?);
                self.push(Node::Int(i64::from(v)))?;
            }
            op::LONG1 => {
                let n = usize::from(self.u8()?);
                let v = self.long(n)?;
                self.push(Node::Int(v))?;
            }
            op::BINFLOAT => {
                let v = f64::from_be_bytes(self.array()?);
                self.push(Node::Float(v))?;
            }
            op::SHORT_BINUNICODE => {
                let n = u64::from(self.u8()?);
                self.unicode(n)?;
            }
            op::BINUNICODE => {
                let n = u64::from(u32::from_le_bytes(self.array()?));
                self.unicode(n)?;
            }
            op::BINUNICODE8 => {
                let n = self.u64()?;
                self.unicode(n)?;
            }
            op::SHORT_BINBYTES => {
                let n = u64::from(self.u8()?);
                self.bytes(n)?;
            }
            op::BINBYTES => {
                let n = u64::from(u32::from_le_bytes(self.array()?));
                self.bytes(n)?;
            }
            op::BINBYTES8 => {
                let n = self.u64()?;
                self.bytes(n)?;
            }
            op::NONE => self.push(Node::None)?,
            op::NEWTRUE => self.push(Node::Bool(true))?,
            op::NEWFALSE => self.push(Node::Bool(false))?,
            op::BINPUT => {
                let slot = u32::from(self.u8()?);
                self.memo_put(slot)?;
            }
            op::LONG_BINPUT => {
                let slot = u32::from_le_bytes(self.array()?);
                self.memo_put(slot)?;
            }
            op::MEMOIZE => {
                let slot = u32::try_from(self.memo.len())
                    .map_err(|_| self.limit("memo slots", self.limits.max_memo))?;
                self.memo_put(slot)?;
            }
            op::BINGET => {
                let slot = u32::from(self.u8()?);
                self.memo_get(slot)?;
            }
            op::LONG_BINGET => {
                let slot = u32::from_le_bytes(self.array()?);
                self.memo_get(slot)?;
            }
            op::GLOBAL => {
                let module = self.line()?;
                let name = self.line()?;
                self.global(&module, &name)?;
            }
            op::STACK_GLOBAL => {
                let name = self.pop_str()?;
                let module = self.pop_str()?;
                self.global(&module, &name)?;
            }
            op::BINPERSID => {
                let pid = self.pop()?;
                let storage = self.storage(pid)?;
                self.push(Node::Storage(Arc::new(storage)))?;
            }
            op::REDUCE => {
                let args = self.pop()?;
                let callable = self.pop()?;
                let node = self.reduce(callable, args)?;
                self.push(node)?;
            }
            other => {
                return Err(PickleError::UnsupportedOpcode {
                    op: self.op,
                    offset: self.op_start,
                    opcode: other,
                    name: unsupported_name(other),
                })
            }
        }
        Ok(())
    }

    // ---- input -------------------------------------------------------

    fn take(&mut self, n: u64) -> PResult<&'a [u8]> {
        let rest = self.input.len() - self.pos;
        let n = usize::try_from(n)
            .ok()
            .filter(|&n| n <= rest)
            .ok_or_else(|| self.malformed(format!("needs {n} more bytes, {rest} are left")))?;
        let bytes = self.input.get(self.pos..self.pos + n).unwrap_or_default();
        self.pos += n;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> PResult<[u8; N]> {
        let bytes = self.take(N as u64)?;
        bytes.try_into().map_err(|_| self.malformed("short read"))
    }

    fn u8(&mut self) -> PResult<u8> {
        let [b] = self.array()?;
        Ok(b)
    }

    fn u64(&mut self) -> PResult<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A little-endian two's-complement integer of `n` bytes (LONG1).
    fn long(&mut self, n: usize) -> PResult<i64> {
        if n > 8 {
            return Err(self.malformed(format!("a {n}-byte integer (at most 8 are read)")));
        }
        let bytes = self.take(n as u64)?;
        let negative = bytes.last().is_some_and(|&b| b & 0x80 != 0);
        let mut le = [if negative { 0xFF } else { 0 }; 8];
        for (dst, &src) in le.iter_mut().zip(bytes) {
            *dst = src;
        }
        Ok(i64::from_le_bytes(le))
    }

    /// A `\n`-terminated UTF-8 line of a GLOBAL.
    fn line(&mut self) -> PResult<String> {
        let rest = self.input.get(self.pos..).unwrap_or_default();
        let window = rest.get(..MAX_GLOBAL_LINE + 1).unwrap_or(rest);
        let len = window.iter().position(|&b| b == b'\n').ok_or_else(|| {
            self.malformed(format!(
                "a GLOBAL line without a newline in its first {MAX_GLOBAL_LINE} bytes"
            ))
        })?;
        let bytes = self.take(len as u64 + 1)?;
        let text = bytes.get(..len).unwrap_or_default();
        std::str::from_utf8(text)
            .map(str::to_owned)
            .map_err(|_| self.malformed("a GLOBAL line is not UTF-8"))
    }

    fn unicode(&mut self, n: u64) -> PResult<()> {
        let bytes = self.take(n)?;
        let text = std::str::from_utf8(bytes)
            .map_err(|_| self.malformed("a string is not valid UTF-8"))?;
        self.push(Node::Str(Arc::from(text)))
    }

    fn bytes(&mut self, n: u64) -> PResult<()> {
        let bytes = self.take(n)?;
        self.push(Node::Bytes(bytes.to_vec()))
    }

    // ---- stack and memo ----------------------------------------------

    fn check_depth(&self) -> PResult<()> {
        if self.stack.len() + self.marks.len() >= self.limits.max_stack {
            return Err(self.limit("stack entries", self.limits.max_stack));
        }
        Ok(())
    }

    fn push(&mut self, node: Node) -> PResult<()> {
        self.check_depth()?;
        let id = self.nodes.len();
        self.nodes.push(node);
        self.stack.push(id);
        Ok(())
    }

    /// The bottom of the current MARK frame: ops may not pop below it
    /// (Python's "unpickling stack underflow").
    fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self) -> PResult<NodeId> {
        if self.stack.len() <= self.floor() {
            return Err(self.malformed("stack underflow"));
        }
        self.stack
            .pop()
            .ok_or_else(|| self.malformed("stack underflow"))
    }

    fn pop_n(&mut self, n: usize) -> PResult<Vec<NodeId>> {
        let at = self
            .stack
            .len()
            .checked_sub(n)
            .filter(|&at| at >= self.floor())
            .ok_or_else(|| self.malformed(format!("stack underflow (needs {n} values)")))?;
        Ok(self.stack.split_off(at))
    }

    fn pop_mark(&mut self) -> PResult<Vec<NodeId>> {
        let at = self
            .marks
            .pop()
            .ok_or_else(|| self.malformed("no MARK to pop to"))?;
        if at > self.stack.len() {
            return Err(self.malformed("stack underflow below a MARK"));
        }
        Ok(self.stack.split_off(at))
    }

    fn top_mut(&mut self) -> PResult<&mut Node> {
        let id = self
            .stack
            .last()
            .copied()
            .filter(|_| self.stack.len() > self.floor())
            .ok_or_else(|| self.malformed("stack underflow"))?;
        let missing = self.malformed("stack underflow");
        self.nodes.get_mut(id).ok_or(missing)
    }

    fn dict_on_top(&mut self) -> PResult<&mut Vec<(NodeId, NodeId)>> {
        let (op, offset) = (self.op, self.op_start);
        match self.top_mut()? {
            Node::Dict(entries) => Ok(entries),
            other => Err(PickleError::Malformed {
                op,
                offset,
                detail: format!("SETITEM(S) on {}", other.kind()),
            }),
        }
    }

    fn list_on_top(&mut self) -> PResult<&mut Vec<NodeId>> {
        let (op, offset) = (self.op, self.op_start);
        match self.top_mut()? {
            Node::List(items) => Ok(items),
            other => Err(PickleError::Malformed {
                op,
                offset,
                detail: format!("APPEND(S) on {}", other.kind()),
            }),
        }
    }

    fn memo_put(&mut self, slot: u32) -> PResult<()> {
        let top = self
            .stack
            .last()
            .copied()
            .ok_or_else(|| self.malformed("memoizing an empty stack"))?;
        if self.memo.len() >= self.limits.max_memo && !self.memo.contains_key(&slot) {
            return Err(self.limit("memo slots", self.limits.max_memo));
        }
        self.memo.insert(slot, top);
        Ok(())
    }

    fn memo_get(&mut self, slot: u32) -> PResult<()> {
        let id = *self
            .memo
            .get(&slot)
            .ok_or_else(|| self.malformed(format!("memo slot {slot} is empty")))?;
        self.check_depth()?;
        self.stack.push(id);
        Ok(())
    }

    fn node(&self, id: NodeId) -> &Node {
        self.nodes.get(id).unwrap_or(&NONE)
    }

    fn pop_str(&mut self) -> PResult<Arc<str>> {
        let id = self.pop()?;
        match self.node(id) {
            Node::Str(s) => Ok(Arc::clone(s)),
            other => Err(self.malformed(format!(
                "STACK_GLOBAL needs strings, found {}",
                other.kind()
            ))),
        }
    }

    // ---- globals, persistent ids, REDUCE -----------------------------

    fn global(&mut self, module: &str, name: &str) -> PResult<()> {
        let global = Global::resolve(module, name).ok_or_else(|| PickleError::ForbiddenGlobal {
            op: self.op,
            offset: self.op_start,
            module: module.to_owned(),
            name: name.to_owned(),
        })?;
        self.push(Node::Global(global))
    }

    fn items(&self, id: NodeId) -> Option<&[NodeId]> {
        match self.node(id) {
            Node::Tuple(items) => Some(items),
            _ => None,
        }
    }

    fn int(&self, id: NodeId) -> Option<i64> {
        match self.node(id) {
            Node::Int(v) => Some(*v),
            _ => None,
        }
    }

    fn str(&self, id: NodeId) -> Option<&Arc<str>> {
        match self.node(id) {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    /// `('storage', torch.XStorage, key, location, numel)`, as torch.save's
    /// `persistent_id` writes it.
    fn storage(&self, pid: NodeId) -> PResult<Storage> {
        let bad = |why: &str| {
            self.malformed(format!(
                "BINPERSID needs ('storage', torch.<X>Storage, key, location, numel): {why}"
            ))
        };
        let &[tag, class, key, location, numel] = self.items(pid).unwrap_or_default() else {
            return Err(bad(&format!("found {}", self.node(pid).kind())));
        };
        if self.str(tag).map(|t| &**t) != Some("storage") {
            return Err(bad("the tag is not 'storage'"));
        }
        let Node::Global(Global::StorageType(dtype)) = *self.node(class) else {
            return Err(bad("the type is not a torch storage class"));
        };
        let key = self
            .str(key)
            .ok_or_else(|| bad("the key is not a string"))?;
        if key.is_empty() || key.contains('/') {
            return Err(bad(&format!("the key {key:?} is not a record name")));
        }
        let location = self
            .str(location)
            .ok_or_else(|| bad("the location is not a string"))?;
        let numel = self
            .int(numel)
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| bad("numel is not a non-negative int"))?;
        Ok(Storage {
            dtype,
            key: Arc::clone(key),
            location: Arc::clone(location),
            numel,
        })
    }

    fn reduce(&self, callable: NodeId, args: NodeId) -> PResult<Node> {
        let args = self.items(args).ok_or_else(|| {
            self.malformed(format!(
                "REDUCE arguments are {}, not a tuple",
                self.node(args).kind()
            ))
        })?;
        match self.node(callable) {
            Node::Global(Global::OrderedDict) if args.is_empty() => Ok(Node::Dict(Vec::new())),
            Node::Global(Global::OrderedDict) => {
                Err(self.malformed("collections.OrderedDict is only rebuilt empty"))
            }
            Node::Global(Global::RebuildTensorV2) => {
                self.rebuild_tensor(args).map(|t| Node::Tensor(Box::new(t)))
            }
            Node::Global(Global::StorageType(dtype)) => Err(self.malformed(format!(
                "torch storage class ({}) may only appear in a persistent id",
                dtype.name()
            ))),
            other => Err(self.malformed(format!(
                "REDUCE of {}: only allow-listed globals can be rebuilt",
                other.kind()
            ))),
        }
    }

    /// `_rebuild_tensor_v2(storage, storage_offset, size, stride,
    /// requires_grad, backward_hooks[, metadata])` for a contiguous tensor.
    fn rebuild_tensor(&self, args: &[NodeId]) -> PResult<TensorRef> {
        let bad = |why: String| self.malformed(format!("_rebuild_tensor_v2: {why}"));
        let (storage, offset, size, stride, requires_grad, hooks, metadata) = match *args {
            [a, b, c, d, e, f] => (a, b, c, d, e, f, None),
            [a, b, c, d, e, f, g] => (a, b, c, d, e, f, Some(g)),
            _ => return Err(bad(format!("{} arguments (want 6 or 7)", args.len()))),
        };
        let Node::Storage(storage) = self.node(storage) else {
            return Err(bad(format!("the storage is {}", self.node(storage).kind())));
        };
        let offset = self
            .int(offset)
            .and_then(|v| u64::try_from(v).ok())
            .ok_or_else(|| bad("the storage offset is not a non-negative int".into()))?;
        let ints = |id: NodeId, what: &str| -> PResult<Vec<i64>> {
            let items = self
                .items(id)
                .ok_or_else(|| bad(format!("the {what} is not a tuple")))?;
            if items.len() > MAX_RANK {
                return Err(bad(format!(
                    "the {what} has more than {MAX_RANK} dimensions"
                )));
            }
            items
                .iter()
                .map(|&i| {
                    self.int(i)
                        .ok_or_else(|| bad(format!("the {what} holds a non-int")))
                })
                .collect()
        };
        let shape: Vec<u64> = ints(size, "size")?
            .into_iter()
            .map(|d| u64::try_from(d).map_err(|_| bad(format!("negative dimension {d}"))))
            .collect::<PResult<_>>()?;
        let stride = ints(stride, "stride")?;
        if !matches!(self.node(requires_grad), Node::Bool(_)) {
            return Err(bad("requires_grad is not a bool".into()));
        }
        for (what, id) in [("backward_hooks", Some(hooks)), ("metadata", metadata)] {
            match id.map(|id| self.node(id)) {
                None => {}
                Some(Node::Dict(entries)) if entries.is_empty() => {}
                Some(other) => {
                    return Err(bad(format!(
                        "{what} must be an empty dict, found {}",
                        other.kind()
                    )))
                }
            }
        }
        let elements = shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| bad("the element count overflows".into()))?;
        if elements > 0 && !is_contiguous(&shape, &stride) {
            return Err(bad(format!(
                "size {shape:?} with stride {stride:?} is not contiguous (torch.save of a \
                 .contiguous() tensor never is)"
            )));
        }
        if offset
            .checked_add(elements)
            .is_none_or(|end| end > storage.numel)
        {
            return Err(bad(format!(
                "{elements} elements from offset {offset} overrun the storage's {}",
                storage.numel
            )));
        }
        Ok(TensorRef {
            storage: Arc::clone(storage),
            offset,
            shape,
        })
    }
}

/// Row-major contiguity as torch defines it: dimensions of size 1 may have
/// any stride.
fn is_contiguous(shape: &[u64], stride: &[i64]) -> bool {
    if shape.len() != stride.len() {
        return false;
    }
    let mut expected: i64 = 1;
    for (&dim, &st) in shape.iter().zip(stride).rev() {
        if dim != 1 {
            if st != expected {
                return false;
            }
            let Some(next) = i64::try_from(dim)
                .ok()
                .and_then(|d| expected.checked_mul(d))
            else {
                return false;
            };
            expected = next;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `pickle.dumps({"a": [1, -2, 3.5, None, True], "b": ("x", b"yz")},
    /// protocol=3)`.
    const PLAIN: &[u8] = b"\x80\x03}q\x00(X\x01\x00\x00\x00aq\x01]q\x02(K\x01J\xfe\xff\xff\xffG@\x0c\x00\x00\x00\x00\x00\x00N\x88eX\x01\x00\x00\x00bq\x03X\x01\x00\x00\x00xq\x04C\x02yzq\x05\x86q\x06u.";

    #[test]
    fn reads_plain_data() {
        let p = parse(PLAIN).unwrap();
        let Node::Dict(entries) = p.node(p.root()) else {
            panic!()
        };
        assert_eq!(entries.len(), 2);
        let (k, v) = entries[0];
        assert_eq!(p.node(k), &Node::Str("a".into()));
        let Node::List(items) = p.node(v) else {
            panic!()
        };
        let values: Vec<&Node> = items.iter().map(|&i| p.node(i)).collect();
        assert_eq!(
            values,
            [
                &Node::Int(1),
                &Node::Int(-2),
                &Node::Float(3.5),
                &Node::None,
                &Node::Bool(true)
            ]
        );
        let Node::Tuple(t) = p.node(entries[1].1) else {
            panic!()
        };
        assert_eq!(p.node(t[1]), &Node::Bytes(b"yz".to_vec()));
    }

    #[test]
    fn refuses_code_execution_by_name() {
        for (pickle, module, name) in [
            (
                &b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03."[..],
                "posix",
                "system",
            ),
            (b"cos\nsystem\n.", "os", "system"),
            (
                b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93.",
                "builtins",
                "eval",
            ),
            (
                b"\x80\x02c__builtin__\ngetattr\n.",
                "__builtin__",
                "getattr",
            ),
            (b"\x80\x02csubprocess\nPopen\n.", "subprocess", "Popen"),
        ] {
            match parse(pickle) {
                Err(PickleError::ForbiddenGlobal {
                    module: m, name: n, ..
                }) => {
                    assert_eq!((m.as_str(), n.as_str()), (module, name));
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn builds_a_tensor_from_allow_listed_globals() {
        // _rebuild_tensor_v2(('storage', torch.HalfStorage, '0', 'cpu', 6),
        //                    2, (2, 2), (2, 1), False, OrderedDict())
        let pickle = b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\nq\x00((X\x07\x00\x00\x00storageq\x01ctorch\nHalfStorage\nq\x02X\x01\x00\x00\x000q\x03X\x03\x00\x00\x00cpuq\x04K\x06tq\x05QK\x02K\x02K\x02\x86q\x06K\x02K\x01\x86q\x07\x89ccollections\nOrderedDict\nq\x08)Rq\x09tq\x0aRq\x0b.";
        let p = parse(pickle).unwrap();
        let Node::Tensor(t) = p.node(p.root()) else {
            panic!("{:?}", p.node(p.root()))
        };
        assert_eq!(t.storage.dtype, Dtype::F16);
        assert_eq!(&*t.storage.key, "0");
        assert_eq!((t.offset, t.shape.clone()), (2, vec![2, 2]));
        // The same with 5 elements in the storage overruns it.
        let mut short = pickle.to_vec();
        let at = short.windows(3).position(|w| w == b"K\x06t").unwrap();
        short[at + 1] = 5;
        assert!(parse(&short).unwrap_err().to_string().contains("overrun"));
    }

    #[test]
    fn contiguity() {
        assert!(is_contiguous(&[2, 3], &[3, 1]));
        assert!(is_contiguous(&[1, 3], &[99, 1]));
        assert!(is_contiguous(&[], &[]));
        assert!(!is_contiguous(&[2, 3], &[1, 2]));
        assert!(!is_contiguous(&[2, 3], &[3]));
    }

    #[test]
    fn memo_shares_nodes_instead_of_copying() {
        // l = []; [l, l, l, ...] via BINGET: one node per op, not per copy.
        let mut p = b"\x80\x02](]q\x00".to_vec();
        p.extend(std::iter::repeat_n(&b"h\x00"[..], 1000).flatten());
        p.extend_from_slice(b"e.");
        let pickle = parse(&p).unwrap();
        assert!(pickle.len() < 10);
    }

    #[test]
    fn repeated_persistent_ids_share_their_strings() {
        // One pid with a 64 KiB key, memoized, then BINGET + BINPERSID 1000
        // times: 2 bytes per storage must not copy the key each time.
        let key = "7".repeat(1 << 16);
        let mut p = b"\x80\x02]((X\x07\x00\x00\x00storagectorch\nHalfStorage\nX".to_vec();
        p.extend_from_slice(&(key.len() as u32).to_le_bytes());
        p.extend_from_slice(key.as_bytes());
        p.extend_from_slice(b"X\x03\x00\x00\x00cpuK\x01tq\x00Q");
        p.extend(std::iter::repeat_n(&b"h\x00Q"[..], 1000).flatten());
        p.extend_from_slice(b"e.");
        let pickle = parse(&p).unwrap();
        let Node::List(items) = pickle.node(pickle.root()) else {
            panic!()
        };
        assert_eq!(items.len(), 1001);
        let keys: Vec<&Arc<str>> = items
            .iter()
            .map(|&i| match pickle.node(i) {
                Node::Storage(s) => &s.key,
                other => panic!("{other:?}"),
            })
            .collect();
        assert!(keys.iter().all(|k| Arc::ptr_eq(k, keys[0])));
    }

    #[test]
    fn limits_and_malformed_input_are_errors() {
        let tiny = Limits {
            max_ops: 3,
            max_stack: 2,
            max_memo: 1,
        };
        assert!(matches!(
            parse_with(b"\x80\x02K\x01K\x02K\x03K\x04.", tiny),
            Err(PickleError::Limit { .. })
        ));
        assert!(matches!(
            parse_with(
                b"K\x01K\x02K\x03.",
                Limits {
                    max_ops: 100,
                    ..tiny
                }
            ),
            Err(PickleError::Limit {
                what: "stack entries",
                ..
            })
        ));
        for bad in [
            &b""[..],
            b"\x80\x02",
            b"\x80\x01N.",
            b"N",
            b"NN.",
            b"N.junk",
            b"(.",
            b"X\xff\xff\xff\xffabc",
            b"\x8c\x02\xff\xfe.",
            b"h\x05.",
            b"a.",
            b"(t(K\x01t\x85.",
            b"K\x01K\x02s.",
            b"ctorch\nHalfStorage\n)R.",
            b"\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x00.",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(
            parse(b"\x80\x02cfoo\nbar\x00"),
            Err(PickleError::Malformed { .. })
        ));
        assert!(matches!(
            parse(b"\x80\x02)b."),
            Err(PickleError::UnsupportedOpcode { name: "BUILD", .. })
        ));
    }

    #[test]
    fn long1_is_twos_complement() {
        for (bytes, want) in [
            (&b"\x8a\x00."[..], 0),
            (b"\x8a\x01\xff.", -1),
            (b"\x8a\x02\x00\x80.", -32768),
            (b"\x8a\x05\x00\x00\x00\x00\x01.", 1 << 32),
            (b"\x8a\x08\xff\xff\xff\xff\xff\xff\xff\x7f.", i64::MAX),
        ] {
            let p = parse(bytes).unwrap();
            assert_eq!(p.node(p.root()), &Node::Int(want));
        }
    }
}
