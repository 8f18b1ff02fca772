//! Plain-text tables and number formatting for the terminal.

/// A table: the first `left` columns are left-aligned (labels), the rest right-aligned.
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    left: usize,
}

impl Table {
    /// A table with these column headers.
    pub fn new(headers: &[&str], left: usize) -> Self {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            left,
        }
    }

    /// Appends a row (missing cells print empty).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as lines of text: header, rule, rows.
    pub fn render(&self) -> String {
        let cols = self.headers.len();
        let cell = |r: &Vec<String>, c: usize| r.get(c).map_or("", String::as_str).to_string();
        let width = |c: usize| {
            self.rows
                .iter()
                .map(|r| cell(r, c).chars().count())
                .chain([self.headers[c].chars().count()])
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..cols).map(width).collect();
        let line = |cells: &Vec<String>| {
            let parts: Vec<String> = (0..cols)
                .map(|c| {
                    let s = cell(cells, c);
                    if c < self.left {
                        format!("{s:<w$}", w = widths[c])
                    } else {
                        format!("{s:>w$}", w = widths[c])
                    }
                })
                .collect();
            parts.join("  ").trim_end().to_string()
        };
        let mut out = vec![line(&self.headers)];
        out.push("-".repeat(widths.iter().sum::<usize>() + 2 * cols.saturating_sub(1)));
        out.extend(self.rows.iter().map(line));
        out.join("\n")
    }
}

/// A number with about four significant digits, or `-` when absent.
pub fn num(x: Option<f64>) -> String {
    let Some(x) = x else {
        return "-".into();
    };
    match x.abs() {
        0.0 => "0".into(),
        a if !(1e-3..1e5).contains(&a) => format!("{x:.2e}"),
        a if a >= 100.0 => format!("{x:.1}"),
        a if a >= 10.0 => format!("{x:.2}"),
        _ => format!("{x:.3}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_alignment() {
        assert_eq!(num(None), "-");
        assert_eq!(num(Some(0.0)), "0");
        assert_eq!(num(Some(0.51234)), "0.512");
        assert_eq!(num(Some(12.345)), "12.35");
        assert_eq!(num(Some(212.34)), "212.3");
        assert_eq!(num(Some(3.4e-4)), "3.40e-4");
        let mut t = Table::new(&["name", "x"], 1);
        t.row(vec!["a".into(), "1.5".into()]);
        t.row(vec!["long".into(), "10".into()]);
        assert_eq!(t.render(), "name    x\n---------\na     1.5\nlong   10");
    }
}
