//! Export: the directory written as a users file in the canonical format
//! (the download of the tenant admin file, docs/scenarios.md), which
//! imports back as "unchanged".

use std::io::Write;

use crate::error::Error;
use crate::schema::{CustomAttribute, Field};
use crate::store::ExistingUser;

use crate::cell::SafeWriter;

/// Writes users as CSV rows under the canonical header.
pub(crate) struct Exporter<W: Write> {
    w: SafeWriter<W>,
    tenant: String,
    custom: Vec<String>,
    pub rows: u64,
    cells: Vec<String>,
}

impl<W: Write> Exporter<W> {
    pub fn new(out: W, tenant: &str, custom: &[CustomAttribute]) -> Result<Exporter<W>, Error> {
        let mut w = SafeWriter::new(out);
        let custom: Vec<String> = custom.iter().map(|a| a.name.clone()).collect();
        w.row(
            Field::ALL
                .iter()
                .map(|f| f.header())
                .chain(custom.iter().map(String::as_str)),
        )?;
        Ok(Exporter {
            w,
            tenant: tenant.to_owned(),
            custom,
            rows: 0,
            cells: Vec::new(),
        })
    }

    pub fn user(&mut self, u: &ExistingUser) -> Result<(), Error> {
        self.cells.clear();
        for &f in Field::ALL {
            let v = match f {
                Field::Tenant => self.tenant.as_str(),
                Field::Transaction | Field::NotifyIfNewUser => "",
                _ => u.user.get(f).unwrap_or(""),
            };
            self.cells.push(v.to_owned());
        }
        for name in &self.custom {
            self.cells
                .push(u.user.custom(name).unwrap_or("").to_owned());
        }
        self.w.row(self.cells.iter().map(String::as_str))?;
        self.rows += 1;
        Ok(())
    }

    pub fn finish(self) -> Result<u64, Error> {
        self.w.finish()?;
        Ok(self.rows)
    }
}
