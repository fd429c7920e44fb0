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

/// Resolves `cells` (the header row). Pushes `unknown_column` warnings and
/// `duplicate_column` errors into `issues`; see [`missing_columns`] for the
/// required columns.
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
    for (col, name) in header.names.iter().enumerate() {
        let target = match mapping.get(name) {
            Some(Column::Field(f)) => Target::Field(*f),
            Some(Column::Custom(n)) => match custom.iter().position(|a| a.name == *n) {
                Some(i) => Target::Custom(i),
                None => {
                    issues.push(
                        Issue::warning(
                            Code::UnknownColumn,
                            format!("the mapping names custom attribute {n:?}, which the profile does not define; column ignored"),
                        )
                        .at(1)
                        .column(name.clone()),
                    );
                    Target::Ignore
                }
            },
            Some(Column::Ignore) => Target::Ignore,
            // The columns the library adds to an error CSV: ignored quietly, so
            // a fixed error file can be uploaded again as it is.
            None if ERROR_CSV_COLUMNS.contains(&name.as_str()) => Target::Ignore,
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
                Target::Ignore
            }),
        };
        let slot = match target {
            Target::Field(f) => Some(&mut header.fields[field_index(f)]),
            Target::Custom(i) => header.custom.get_mut(i),
            Target::Ignore => None,
        };
        let target = match slot {
            Some(slot) => match *slot {
                Some(first) => {
                    issues.push(
                        Issue::error(
                            Code::DuplicateColumn,
                            format!(
                                "column {} ({name:?}) names the same field as column {} ({:?})",
                                col + 1,
                                first + 1,
                                header.names[first]
                            ),
                        )
                        .at(1)
                        .column(name.clone()),
                    );
                    Target::Ignore
                }
                None => {
                    *slot = Some(col);
                    target
                }
            },
            None => target,
        };
        header.targets.push(target);
    }
    header
}

fn auto_target(name: &str, custom: &[CustomAttribute]) -> Option<Target> {
    if let Some(f) = Field::from_header(name) {
        return Some(Target::Field(f));
    }
    let folded = fold_header(name);
    custom
        .iter()
        .position(|a| {
            fold_header(&a.name) == folded || a.aliases.iter().any(|al| fold_header(al) == folded)
        })
        .map(Target::Custom)
}

/// Whether a header cell names something (for delimiter detection).
pub(crate) fn is_known(name: &str, mapping: &ColumnMapping, custom: &[CustomAttribute]) -> bool {
    mapping.get(name).is_some() || auto_target(name, custom).is_some()
}
