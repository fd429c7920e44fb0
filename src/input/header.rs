//! Matching the header row to fields: folding, aliases, the explicit mapping,
//! and the unknown / duplicate / missing column checks.

use crate::issue::{Code, Issue};
use crate::schema::{Column, ColumnMapping, CustomAttribute, Field, closest, fold_header};

/// `missing_column` errors for the required fields and custom attributes the
/// header lacks.
pub(crate) fn missing_columns(
    header: &Header,
    required: &[Field],
    custom: &[CustomAttribute],
) -> Vec<Issue> {
    let mut issues = Vec::new();
    let missing = |name: &str| {
        Issue::error(
            Code::MissingColumn,
            format!("required column {name:?} is missing"),
        )
        .at(1)
        .column(name)
    };
    for &f in required {
        if header.column_of(f).is_none() {
            issues.push(missing(f.header()));
        }
    }
    for (i, a) in custom.iter().enumerate() {
        if a.required && header.custom[i].is_none() {
            issues.push(missing(&a.name));
        }
    }
    issues
}

/// What one column of the file is read into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Field(Field),
    /// Index into the profile's custom attributes.
    Custom(usize),
    /// Mapped to nothing, or unknown, or a duplicate: not read.
    Ignore,
}

/// The resolved header.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    /// Column names as written (trimmed), for issues.
    pub names: Vec<String>,
    pub targets: Vec<Target>,
    /// Column index of each standard field.
    pub fields: [Option<usize>; Field::ALL.len()],
    /// Column index of each custom attribute.
    pub custom: Vec<Option<usize>>,
}

impl Header {
    pub fn column_of(&self, field: Field) -> Option<usize> {
        self.fields[field_index(field)]
    }

    /// The column name to put in an issue about `field`: as written in the
    /// file when the column exists, else the canonical header.
    pub fn name_of(&self, field: Field) -> &str {
        match self.column_of(field) {
            Some(c) => &self.names[c],
            None => field.header(),
        }
    }
}

pub(crate) fn field_index(field: Field) -> usize {
    field.index()
}

/// Columns added by [`crate::Validation::write_error_csv`].
pub(crate) const ERROR_CSV_COLUMNS: [&str; 2] = ["line", "error"];

/// How well a column's name matched what it is read into: the lower, the
/// better. Two columns for one field are an error when neither is better
/// (two `email` columns), and otherwise the better one is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    /// The profile's explicit mapping names the column.
    Mapped,
    /// The column's name (or the attribute named in its brackets) is the
    /// field's own name.
    Exact,
    /// The name is one of the field's aliases.
    Alias,
}

/// Resolves `cells` (the header row). Pushes `unknown_column` warnings, and
/// `duplicate_column` errors (two columns that name one field equally well)
/// or warnings (a column that is only an alias of a field another column
/// names better) into `issues`; see [`missing_columns`] for the required
/// columns.
pub(crate) fn resolve(
    cells: &[String],
    mapping: &ColumnMapping,
    custom: &[CustomAttribute],
    issues: &mut Vec<Issue>,
) -> Header {
    let mut header = Header {
        names: cells
            .iter()
            .map(|c| c.trim_start_matches('\u{feff}').trim().to_owned())
            .collect(),
        targets: Vec::with_capacity(cells.len()),
        fields: [None; Field::ALL.len()],
        custom: vec![None; custom.len()],
    };
    // What each column would be read into, and how well its name matched.
    let mut wanted: Vec<(Target, Rank)> = Vec::with_capacity(cells.len());
    for (col, name) in header.names.iter().enumerate() {
        let target = match mapping.get(name) {
            Some(Column::Field(f)) => (Target::Field(*f), Rank::Mapped),
            Some(Column::Custom(n)) => match custom.iter().position(|a| a.name == *n) {
                Some(i) => (Target::Custom(i), Rank::Mapped),
                None => {
                    issues.push(
                        Issue::warning(
                            Code::UnknownColumn,
                            format!("the mapping names custom attribute {n:?}, which the profile does not define; column ignored"),
                        )
                        .at(1)
                        .column(name.clone()),
                    );
                    (Target::Ignore, Rank::Mapped)
                }
            },
            Some(Column::Ignore) => (Target::Ignore, Rank::Mapped),
            // The columns the library adds to an error CSV: ignored quietly, so
            // a fixed error file can be uploaded again as it is.
            None if ERROR_CSV_COLUMNS.contains(&name.as_str()) => (Target::Ignore, Rank::Exact),
            None => auto_target(name, custom).unwrap_or_else(|| {
                let message = if name.is_empty() {
                    format!("column {} has no header; it is ignored", col + 1)
                } else {
                    "unknown column; it is ignored".to_owned()
                };
                let candidates = Field::ALL
                    .iter()
                    .map(|f| f.header())
                    .chain(custom.iter().map(|a| a.name.as_str()));
                issues.push(
                    Issue::warning(Code::UnknownColumn, message)
                        .at(1)
                        .column(name.clone())
                        .maybe_suggest(closest(name, candidates)),
                );
                (Target::Ignore, Rank::Exact)
            }),
        };
        wanted.push(target);
    }
    // The column read for each field: the best match, the first of equals.
    let best = |target: Target| {
        wanted
            .iter()
            .enumerate()
            .filter(|(_, w)| w.0 == target)
            .min_by_key(|(col, w)| (w.1, *col))
            .map(|(col, w)| (col, w.1))
    };
    for (col, &(target, rank)) in wanted.iter().enumerate() {
        let name = &header.names[col];
        let read = match target {
            Target::Ignore => Target::Ignore,
            _ => match best(target) {
                Some((first, _)) if first == col => target,
                Some((first, first_rank)) => {
                    let used = &header.names[first];
                    let field = target_name(target, custom);
                    issues.push(if first_rank == rank && rank != Rank::Alias {
                        Issue::error(
                            Code::DuplicateColumn,
                            format!(
                                "column {} ({name:?}) names the same field as column {} ({used:?})",
                                col + 1,
                                first + 1,
                            ),
                        )
                    } else {
                        Issue::warning(
                            Code::DuplicateColumn,
                            format!(
                                "column {} ({name:?}) and column {} ({used:?}) both stand for {field}; column {} is read and this one is ignored (map the columns in the profile to choose)",
                                col + 1,
                                first + 1,
                                first + 1,
                            ),
                        )
                    }
                    .at(1)
                    .column(name.clone()));
                    Target::Ignore
                }
                None => Target::Ignore,
            },
        };
        match read {
            Target::Field(f) => header.fields[field_index(f)] = Some(col),
            Target::Custom(i) => {
                if let Some(slot) = header.custom.get_mut(i) {
                    *slot = Some(col);
                }
            }
            Target::Ignore => {}
        }
        header.targets.push(read);
    }
    header
}

/// A target's name, for messages.
fn target_name(target: Target, custom: &[CustomAttribute]) -> String {
    match target {
        Target::Field(f) => f.header().to_owned(),
        Target::Custom(i) => custom.get(i).map_or_else(String::new, |a| a.name.clone()),
        Target::Ignore => String::new(),
    }
}

/// What a header names without the profile's mapping: a field or custom
/// attribute by its name or an alias; failing that, the attribute a vendor's
/// decoration names in brackets (`First name [givenName]`), or the name
/// without its decorations (`Email Address [Required]`, `email (required)`).
fn auto_target(name: &str, custom: &[CustomAttribute]) -> Option<(Target, Rank)> {
    if let Some(found) = named(name, custom) {
        return Some(found);
    }
    let (base, hints) = undecorated(name)?;
    hints
        .iter()
        .find_map(|h| named(h, custom))
        .or_else(|| named(&base, custom))
}

/// A field or custom attribute named by `name` (folded), with the rank.
fn named(name: &str, custom: &[CustomAttribute]) -> Option<(Target, Rank)> {
    let folded = fold_header(name);
    if folded.is_empty() {
        return None;
    }
    for &f in Field::ALL {
        if fold_header(f.header()) == folded {
            return Some((Target::Field(f), Rank::Exact));
        }
    }
    for &f in Field::ALL {
        if f.aliases().contains(&folded.as_str()) {
            return Some((Target::Field(f), Rank::Alias));
        }
    }
    for (i, a) in custom.iter().enumerate() {
        if fold_header(&a.name) == folded {
            return Some((Target::Custom(i), Rank::Exact));
        }
    }
    custom
        .iter()
        .position(|a| a.aliases.iter().any(|al| fold_header(al) == folded))
        .map(|i| (Target::Custom(i), Rank::Alias))
}

/// Splits a decorated header into its text and its bracketed hints:
/// `User name [userPrincipalName] Required` is `User name` with the hint
/// `userPrincipalName`. Words that only say whether the column is required
/// (`Required`, `optional`, `*`) are dropped. `None` when there is nothing
/// to take off.
fn undecorated(name: &str) -> Option<(String, Vec<String>)> {
    let mut base = String::new();
    let mut hints = Vec::new();
    let mut hint: Option<(char, String)> = None;
    for c in name.chars() {
        match (&mut hint, c) {
            (None, '[') => hint = Some((']', String::new())),
            (None, '(') => hint = Some((')', String::new())),
            (Some((close, text)), c) if c == *close => {
                hints.push(std::mem::take(text));
                hint = None;
            }
            (Some((_, text)), c) => text.push(c),
            (None, c) => base.push(c),
        }
    }
    if let Some((_, text)) = hint {
        // An unclosed bracket: its text is part of the name.
        base.push_str(&text);
    }
    hints.retain(|h| !is_requirement(h));
    let mut words: Vec<&str> = base.split_whitespace().collect();
    while words.last().is_some_and(|w| is_requirement(w)) {
        words.pop();
    }
    let base = words.join(" ").trim_end_matches('*').trim().to_owned();
    let changed = base != name.trim() || !hints.is_empty();
    changed.then_some((base, hints))
}

fn is_requirement(word: &str) -> bool {
    let w = word.trim().trim_matches('*');
    w.is_empty() || w.eq_ignore_ascii_case("required") || w.eq_ignore_ascii_case("optional")
}

/// Whether a header cell names something (for delimiter detection).
pub(crate) fn is_known(name: &str, mapping: &ColumnMapping, custom: &[CustomAttribute]) -> bool {
    mapping.get(name).is_some() || auto_target(name, custom).is_some()
}
