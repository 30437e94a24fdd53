//! Go's `text/tabwriter` (left-aligned, space padding, flags 0), which docker's tables go
//! through: a cell ends at a tab, the text after a line's last tab is not aligned, and
//! columns are aligned per block of consecutive lines that have that column.

pub struct TabWriter {
    pub minwidth: usize,
    pub padding: usize,
}

struct Cell {
    text: String,
    width: usize,
}

impl TabWriter {
    /// docker's table writer: `tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`.
    pub fn docker_table() -> TabWriter {
        TabWriter {
            minwidth: 10,
            padding: 3,
        }
    }

    pub fn format(&self, text: &str) -> String {
        let mut lines: Vec<Vec<Cell>> = Vec::new();
        let ends_with_newline = text.ends_with('\n');
        let body = text.strip_suffix('\n').unwrap_or(text);
        for line in body.split('\n') {
            lines.push(
                line.split('\t')
                    .map(|t| Cell {
                        text: t.to_string(),
                        width: t.chars().count(),
                    })
                    .collect(),
            );
        }
        let mut out = String::new();
        let mut widths = Vec::new();
        self.block(&lines, 0, lines.len(), &mut widths, &mut out);
        if !ends_with_newline {
            out.pop();
        }
        out
    }

    fn block(
        &self,
        lines: &[Vec<Cell>],
        mut line0: usize,
        line1: usize,
        widths: &mut Vec<usize>,
        out: &mut String,
    ) {
        let column = widths.len();
        let mut this = line0;
        while this < line1 {
            if column + 1 >= lines[this].len() {
                this += 1;
                continue;
            }
            // a cell in this column: print the lines before the block, then size the block
            self.write_lines(lines, line0, this, widths, out);
            line0 = this;
            let mut width = self.minwidth;
            while this < line1 && column + 1 < lines[this].len() {
                width = width.max(lines[this][column].width + self.padding);
                this += 1;
            }
            widths.push(width);
            self.block(lines, line0, this, widths, out);
            widths.pop();
            line0 = this;
        }
        self.write_lines(lines, line0, line1, widths, out);
    }

    fn write_lines(&self, lines: &[Vec<Cell>], from: usize, to: usize, widths: &[usize], out: &mut String) {
        for line in &lines[from..to] {
            for (j, c) in line.iter().enumerate() {
                out.push_str(&c.text);
                if j < widths.len() {
                    out.extend(std::iter::repeat_n(' ', widths[j].saturating_sub(c.width)));
                }
            }
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_like_go() {
        let t = TabWriter::docker_table();
        let got = t.format(
            "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\nbusybox\tlatest\t3f57d9401f8d\t2 weeks ago\t4.26MB\n",
        );
        assert_eq!(
            got,
            "REPOSITORY   TAG       IMAGE ID       CREATED       SIZE\n\
             busybox      latest    3f57d9401f8d   2 weeks ago   4.26MB\n"
        );
    }

    #[test]
    fn blocks_and_ragged_lines() {
        let t = TabWriter {
            minwidth: 0,
            padding: 1,
        };
        // the line without tabs ends the block: the columns before and after are sized apart
        let got = t.format("a\tb\nlong\tc\nplain\nxx\ty\n");
        assert_eq!(got, "a    b\nlong c\nplain\nxx y\n");
        // empty cells are padded too, the last cell never is
        assert_eq!(t.format("\tx\nab\ty\n"), "   x\nab y\n");
    }
}
