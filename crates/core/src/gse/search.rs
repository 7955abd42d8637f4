//! SearchGameServerSessions filter and sort expressions.
//!
//! Grammar (from the documented examples; precedence as GameLift: parentheses, NOT, AND, OR):
//! ```text
//! expr       := and ("OR" and)*
//! and        := unary ("AND" unary)*
//! unary      := "NOT" unary | "(" expr ")" | comparison
//! comparison := operand op value        op: = <> != > >= < <=
//! value      := 'quoted' | "quoted" | bare-word
//! ```
//! String operands allow `=` and `<>`; number operands allow every operator.

use std::cmp::Ordering;

use super::model::{GameServerSession, PlayerSessionCreationPolicy};

const MAX_EXPRESSION_LEN: usize = 4096;
const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Name,
    Id,
    MaximumSessions,
    CreationTimeMillis,
    PlayerSessionCount,
    HasAvailablePlayerSessions,
    Property(String),
}

impl Operand {
    fn parse(word: &str) -> Option<Operand> {
        Some(match word {
            "gameServerSessionName" => Operand::Name,
            "gameServerSessionId" => Operand::Id,
            "maximumSessions" => Operand::MaximumSessions,
            "creationTimeMillis" => Operand::CreationTimeMillis,
            "playerSessionCount" => Operand::PlayerSessionCount,
            "hasAvailablePlayerSessions" => Operand::HasAvailablePlayerSessions,
            other => {
                let key = other.strip_prefix("gameServerSessionProperties.")?;
                if key.is_empty() {
                    return None;
                }
                Operand::Property(key.to_string())
            }
        })
    }

    fn is_number(&self) -> bool {
        matches!(
            self,
            Operand::MaximumSessions | Operand::CreationTimeMillis | Operand::PlayerSessionCount
        )
    }

    fn number(&self, s: &GameServerSession) -> i64 {
        match self {
            Operand::MaximumSessions => i64::from(s.max_players),
            Operand::CreationTimeMillis => s.created_ms,
            Operand::PlayerSessionCount => i64::from(s.current_players),
            _ => 0,
        }
    }

    fn string(&self, s: &GameServerSession) -> Option<String> {
        match self {
            Operand::Name => Some(s.name.clone().unwrap_or_default()),
            Operand::Id => Some(s.id.to_string()),
            Operand::HasAvailablePlayerSessions => Some(
                (s.current_players < s.max_players
                    && s.creation_policy == PlayerSessionCreationPolicy::AcceptAll)
                    .to_string(),
            ),
            Operand::Property(key) => s
                .game_properties
                .iter()
                .find(|p| &p.key == key)
                .map(|p| p.value.clone()),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Compare {
        operand: Operand,
        op: Op,
        value: String,
        number: i64,
    },
    Not(Box<Filter>),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
}

impl Filter {
    pub fn parse(text: &str) -> Result<Filter, String> {
        if text.len() > MAX_EXPRESSION_LEN {
            return Err(format!(
                "FilterExpression is longer than {MAX_EXPRESSION_LEN} characters"
            ));
        }
        let tokens = tokenize(text)?;
        let mut parser = Parser {
            tokens,
            pos: 0,
            depth: 0,
        };
        let filter = parser.expr()?;
        if let Some(token) = parser.tokens.get(parser.pos) {
            return Err(format!(
                "FilterExpression: unexpected {} after a complete expression",
                token.describe()
            ));
        }
        Ok(filter)
    }

    pub fn matches(&self, s: &GameServerSession) -> bool {
        match self {
            Filter::Not(inner) => !inner.matches(s),
            Filter::And(a, b) => a.matches(s) && b.matches(s),
            Filter::Or(a, b) => a.matches(s) || b.matches(s),
            Filter::Compare {
                operand,
                op,
                value,
                number,
            } => {
                let ordering = if operand.is_number() {
                    operand.number(s).cmp(number)
                } else {
                    match operand.string(s) {
                        Some(actual) => {
                            if actual == *value {
                                Ordering::Equal
                            } else {
                                Ordering::Less
                            }
                        }
                        // A missing property matches only `<>`.
                        None => return *op == Op::Ne,
                    }
                };
                match op {
                    Op::Eq => ordering == Ordering::Equal,
                    Op::Ne => ordering != Ordering::Equal,
                    Op::Gt => ordering == Ordering::Greater,
                    Op::Ge => ordering != Ordering::Less,
                    Op::Lt => ordering == Ordering::Less,
                    Op::Le => ordering != Ordering::Greater,
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Op(Op),
    Open,
    Close,
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Word(w) => format!("{w:?}"),
            Token::Quoted(q) => format!("'{q}'"),
            Token::Op(_) => "an operator".into(),
            Token::Open => "\"(\"".into(),
            Token::Close => "\")\"".into(),
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            ')' => {
                tokens.push(Token::Close);
                i += 1;
            }
            '\'' | '"' => {
                let end = chars[i + 1..].iter().position(|&d| d == c).ok_or_else(|| {
                    format!(
                        "FilterExpression: unterminated quote starting at character {}",
                        i + 1
                    )
                })?;
                tokens.push(Token::Quoted(chars[i + 1..i + 1 + end].iter().collect()));
                i += end + 2;
            }
            '=' | '<' | '>' | '!' => {
                let next = chars.get(i + 1).copied();
                let (op, len) = match (c, next) {
                    ('<', Some('>')) => (Op::Ne, 2),
                    ('!', Some('=')) => (Op::Ne, 2),
                    ('<', Some('=')) => (Op::Le, 2),
                    ('>', Some('=')) => (Op::Ge, 2),
                    ('=', _) => (Op::Eq, 1),
                    ('<', _) => (Op::Lt, 1),
                    ('>', _) => (Op::Gt, 1),
                    _ => {
                        return Err(format!(
                            "FilterExpression: unexpected \"{c}\" at character {}",
                            i + 1
                        ))
                    }
                };
                tokens.push(Token::Op(op));
                i += len;
            }
            _ => {
                let start = i;
                while i < chars.len()
                    && !chars[i].is_whitespace()
                    && !"()=<>!'\"".contains(chars[i])
                {
                    i += 1;
                }
                tokens.push(Token::Word(chars[start..i].iter().collect()));
            }
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek_keyword(&self, keyword: &str) -> bool {
        matches!(self.tokens.get(self.pos), Some(Token::Word(w)) if w.eq_ignore_ascii_case(keyword))
    }

    fn expr(&mut self) -> Result<Filter, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!(
                "FilterExpression nests deeper than {MAX_DEPTH} levels"
            ));
        }
        let mut left = self.and()?;
        while self.peek_keyword("OR") {
            self.pos += 1;
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        self.depth -= 1;
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, String> {
        let mut left = self.unary()?;
        while self.peek_keyword("AND") {
            self.pos += 1;
            left = Filter::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, String> {
        if self.peek_keyword("NOT") {
            self.pos += 1;
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err(format!(
                    "FilterExpression nests deeper than {MAX_DEPTH} levels"
                ));
            }
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Filter::Not(Box::new(inner)));
        }
        match self.tokens.get(self.pos).cloned() {
            Some(Token::Open) => {
                self.pos += 1;
                let inner = self.expr()?;
                match self.tokens.get(self.pos) {
                    Some(Token::Close) => {
                        self.pos += 1;
                        Ok(inner)
                    }
                    _ => Err("FilterExpression: missing \")\"".into()),
                }
            }
            Some(Token::Word(word)) => {
                self.pos += 1;
                self.comparison(&word)
            }
            Some(other) => Err(format!(
                "FilterExpression: expected an operand, found {}",
                other.describe()
            )),
            None => Err("FilterExpression ends where an operand was expected".into()),
        }
    }

    fn comparison(&mut self, word: &str) -> Result<Filter, String> {
        let operand = Operand::parse(word).ok_or_else(|| {
            format!("FilterExpression: unknown operand {word:?}; use gameServerSessionName, gameServerSessionId, maximumSessions, creationTimeMillis, playerSessionCount, hasAvailablePlayerSessions or gameServerSessionProperties.<key>")
        })?;
        let op = match self.tokens.get(self.pos) {
            Some(Token::Op(op)) => *op,
            _ => {
                return Err(format!(
                    "FilterExpression: expected an operator after {word}"
                ))
            }
        };
        self.pos += 1;
        let value = match self.tokens.get(self.pos) {
            Some(Token::Word(v)) | Some(Token::Quoted(v)) => v.clone(),
            _ => return Err(format!("FilterExpression: expected a value after {word}")),
        };
        self.pos += 1;
        let number = if operand.is_number() {
            value.parse::<i64>().map_err(|_| {
                format!("FilterExpression: {word} compares with a number, got {value:?}")
            })?
        } else {
            if !matches!(op, Op::Eq | Op::Ne) {
                return Err(format!(
                    "FilterExpression: {word} is a string operand and allows only = and <>"
                ));
            }
            if operand == Operand::HasAvailablePlayerSessions && value != "true" && value != "false"
            {
                return Err(format!("FilterExpression: hasAvailablePlayerSessions compares with true or false, got {value:?}"));
            }
            0
        };
        Ok(Filter::Compare {
            operand,
            op,
            value,
            number,
        })
    }
}

/// SortExpression: `<operand> ASC|DESC`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sort {
    operand: Operand,
    descending: bool,
}

impl Sort {
    pub fn parse(text: &str) -> Result<Sort, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let (word, order) = match words.as_slice() {
            [w] => (*w, "ASC"),
            [w, o] => (*w, *o),
            _ => {
                return Err("SortExpression must be \"<operand> ASC\" or \"<operand> DESC\"".into())
            }
        };
        let operand = match Operand::parse(word) {
            Some(op @ (Operand::Name | Operand::Id | Operand::MaximumSessions | Operand::CreationTimeMillis | Operand::PlayerSessionCount)) => op,
            _ => return Err(format!("SortExpression: cannot sort by {word:?}; use gameServerSessionName, gameServerSessionId, maximumSessions, creationTimeMillis or playerSessionCount")),
        };
        let descending = match order.to_ascii_uppercase().as_str() {
            "ASC" => false,
            "DESC" => true,
            _ => {
                return Err(format!(
                    "SortExpression: order must be ASC or DESC, got {order:?}"
                ))
            }
        };
        Ok(Sort {
            operand,
            descending,
        })
    }

    pub fn apply(&self, sessions: &mut [GameServerSession]) {
        sessions.sort_by(|a, b| {
            let ordering = if self.operand.is_number() {
                self.operand.number(a).cmp(&self.operand.number(b))
            } else {
                self.operand.string(a).cmp(&self.operand.string(b))
            };
            if self.descending {
                ordering.reverse()
            } else {
                ordering
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gse::model::*;
    use crate::AccountId;

    fn session(name: &str, max: u32, players: u32, created: i64) -> GameServerSession {
        GameServerSession {
            id: format!("gssess-{name}").into(),
            account: AccountId("1".into()),
            fleet_id: "fleet-1".into(),
            name: Some(name.into()),
            creator_id: None,
            status: GameServerSessionStatus::Active,
            status_reason: None,
            max_players: max,
            creation_policy: PlayerSessionCreationPolicy::AcceptAll,
            protection: ProtectionPolicy::NoProtection,
            ip_address: "127.0.0.1".into(),
            port: 7777,
            game_properties: vec![GameProperty {
                key: "mode".into(),
                value: "ctf".into(),
            }],
            data: None,
            matchmaker_data: None,
            created_ms: created,
            terminated_ms: None,
            instance_type: None,
            current_custom_count: None,
            max_custom_count: None,
            idempotency_token: None,
            pid: None,
            current_players: players,
        }
    }

    #[test]
    fn documented_example_parses_and_evaluates() {
        let f = Filter::parse(
            "(maximumSessions>=10 OR playerSessionCount=0) OR NOT (creationTimeMillis>1575518668000) OR (maximumSessions>=10 AND hasAvailablePlayerSessions=true)",
        )
        .unwrap();
        assert!(f.matches(&session("a", 10, 3, 1_700_000_000_000)));
        assert!(f.matches(&session("b", 5, 0, 1_700_000_000_000)));
        assert!(!f.matches(&session("c", 5, 2, 1_700_000_000_000)));
        assert!(f.matches(&session("d", 5, 2, 1_000)));
    }

    #[test]
    fn and_binds_tighter_than_or_and_not_tighter_than_and() {
        let s = session("x", 4, 4, 0);
        // false AND false OR true == true (AND first)
        assert!(
            Filter::parse("maximumSessions=1 AND maximumSessions=2 OR maximumSessions=4")
                .unwrap()
                .matches(&s)
        );
        // NOT false AND false == false
        assert!(
            !Filter::parse("NOT maximumSessions=1 AND maximumSessions=2")
                .unwrap()
                .matches(&s)
        );
    }

    #[test]
    fn strings_quoted_or_bare_and_properties() {
        let s = session("V1", 4, 0, 0);
        assert!(Filter::parse("gameServerSessionName = 'V1'")
            .unwrap()
            .matches(&s));
        assert!(Filter::parse("gameServerSessionName=V1")
            .unwrap()
            .matches(&s));
        assert!(Filter::parse("gameServerSessionName<>V2")
            .unwrap()
            .matches(&s));
        assert!(Filter::parse("gameServerSessionProperties.mode='ctf'")
            .unwrap()
            .matches(&s));
        assert!(!Filter::parse("gameServerSessionProperties.other='ctf'")
            .unwrap()
            .matches(&s));
        assert!(Filter::parse("hasAvailablePlayerSessions=true")
            .unwrap()
            .matches(&s));
    }

    #[test]
    fn errors_name_the_problem() {
        assert!(Filter::parse("gameServerSessionName > 'a'")
            .unwrap_err()
            .contains("only = and <>"));
        assert!(Filter::parse("bogus=1")
            .unwrap_err()
            .contains("unknown operand"));
        assert!(Filter::parse("maximumSessions=abc")
            .unwrap_err()
            .contains("number"));
        assert!(Filter::parse("(maximumSessions=1")
            .unwrap_err()
            .contains(")"));
        assert!(Filter::parse("maximumSessions=1 maximumSessions=2").is_err());
        assert!(Filter::parse("gameServerSessionName='open")
            .unwrap_err()
            .contains("unterminated"));
        let deep = format!("{}maximumSessions=1{}", "(".repeat(100), ")".repeat(100));
        assert!(Filter::parse(&deep).unwrap_err().contains("deeper"));
        let nots = format!("{}maximumSessions=1", "NOT ".repeat(100));
        assert!(Filter::parse(&nots).unwrap_err().contains("deeper"));
    }

    #[test]
    fn sort_orders() {
        let mut v = vec![
            session("a", 1, 0, 3),
            session("b", 2, 0, 1),
            session("c", 3, 0, 2),
        ];
        Sort::parse("creationTimeMillis ASC").unwrap().apply(&mut v);
        assert_eq!(
            v.iter().map(|s| s.created_ms).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        Sort::parse("maximumSessions DESC").unwrap().apply(&mut v);
        assert_eq!(
            v.iter().map(|s| s.max_players).collect::<Vec<_>>(),
            vec![3, 2, 1]
        );
        assert!(Sort::parse("hasAvailablePlayerSessions ASC").is_err());
        assert!(Sort::parse("creationTimeMillis UP").is_err());
    }
}
