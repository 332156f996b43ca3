//! A minimal line diff in the unified format (`diff -u`): what a check mode prints when a generated
//! file is stale. Only changed lines are marked; equal lines appear as context.

/// Lines of context around each change, as `diff -u` gives by default.
const CONTEXT: usize = 3;

/// Past this many differing lines on both sides (after the common head and tail are set aside),
/// the middle is shown as all removed then all added rather than aligned: the alignment's table
/// grows with the product of the two.
const MAX_ALIGNED_LINES: usize = 4000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line<'a> {
    Same(&'a str),
    Removed(&'a str),
    Added(&'a str),
}

/// The hunks that turn `current` into `expected`, headed `--- {from_name}` and `+++ {to_name}`;
/// empty when the two are equal.
pub fn unified(current: &str, expected: &str, from_name: &str, to_name: &str) -> String {
    if current == expected {
        return String::new();
    }
    let lines = align(&current.lines().collect::<Vec<_>>(), &expected.lines().collect::<Vec<_>>());
    let mut text = format!("--- {from_name}\n+++ {to_name}\n");
    text.push_str(&hunks(&lines));
    text
}

/// The shortest edit from `old` to `new`: common head and tail, then a longest common subsequence
/// of the middle.
fn align<'a>(old: &[&'a str], new: &[&'a str]) -> Vec<Line<'a>> {
    let head = old.iter().zip(new).take_while(|(left, right)| left == right).count();
    let tail = old[head..].iter().rev().zip(new[head..].iter().rev()).take_while(|(left, right)| left == right).count();
    let (old_middle, new_middle) = (&old[head..old.len() - tail], &new[head..new.len() - tail]);
    let mut lines: Vec<Line<'a>> = old[..head].iter().map(|line| Line::Same(line)).collect();
    if old_middle.len() > MAX_ALIGNED_LINES && new_middle.len() > MAX_ALIGNED_LINES {
        lines.extend(old_middle.iter().map(|line| Line::Removed(line)));
        lines.extend(new_middle.iter().map(|line| Line::Added(line)));
    } else {
        lines.extend(longest_common_subsequence(old_middle, new_middle));
    }
    lines.extend(old[old.len() - tail..].iter().map(|line| Line::Same(line)));
    lines
}

fn longest_common_subsequence<'a>(old: &[&'a str], new: &[&'a str]) -> Vec<Line<'a>> {
    // lengths[i][j]: the longest common subsequence of old[i..] and new[j..].
    let width = new.len() + 1;
    let mut lengths = vec![0u32; (old.len() + 1) * width];
    for i in (0..old.len()).rev() {
        for j in (0..new.len()).rev() {
            lengths[i * width + j] = if old[i] == new[j] {
                lengths[(i + 1) * width + j + 1] + 1
            } else {
                lengths[(i + 1) * width + j].max(lengths[i * width + j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut lines = Vec::with_capacity(old.len() + new.len());
    while i < old.len() || j < new.len() {
        if i < old.len() && j < new.len() && old[i] == new[j] {
            lines.push(Line::Same(old[i]));
            i += 1;
            j += 1;
        } else if j < new.len() && (i == old.len() || lengths[i * width + j + 1] >= lengths[(i + 1) * width + j]) {
            lines.push(Line::Added(new[j]));
            j += 1;
        } else {
            lines.push(Line::Removed(old[i]));
            i += 1;
        }
    }
    // Within each run of changes, removals before additions, as `diff -u` prints them.
    let mut ordered = Vec::with_capacity(lines.len());
    let mut run: Vec<Line<'a>> = Vec::new();
    for line in lines {
        if let Line::Same(_) = line {
            ordered.extend(run.iter().filter(|line| matches!(line, Line::Removed(_))));
            ordered.extend(run.iter().filter(|line| matches!(line, Line::Added(_))));
            run.clear();
            ordered.push(line);
        } else {
            run.push(line);
        }
    }
    ordered.extend(run.iter().filter(|line| matches!(line, Line::Removed(_))));
    ordered.extend(run.iter().filter(|line| matches!(line, Line::Added(_))));
    ordered
}

/// Groups changes that lie within 2 x CONTEXT lines of each other into one hunk.
fn hunks(lines: &[Line<'_>]) -> String {
    let changed: Vec<usize> =
        lines.iter().enumerate().filter(|(_, line)| !matches!(line, Line::Same(_))).map(|(index, _)| index).collect();
    let mut text = String::new();
    let mut start = 0;
    while start < changed.len() {
        let mut end = start;
        while end + 1 < changed.len() && changed[end + 1] - changed[end] <= 2 * CONTEXT + 1 {
            end += 1;
        }
        let first = changed[start].saturating_sub(CONTEXT);
        let last = (changed[end] + CONTEXT).min(lines.len() - 1);
        // 1-based line numbers where the hunk starts in each file.
        let old_before = lines[..first].iter().filter(|line| !matches!(line, Line::Added(_))).count();
        let new_before = lines[..first].iter().filter(|line| !matches!(line, Line::Removed(_))).count();
        let hunk = &lines[first..=last];
        let old_count = hunk.iter().filter(|line| !matches!(line, Line::Added(_))).count();
        let new_count = hunk.iter().filter(|line| !matches!(line, Line::Removed(_))).count();
        text.push_str(&format!("@@ -{} +{} @@\n", range(old_before, old_count), range(new_before, new_count)));
        for line in hunk {
            let (mark, content) = match line {
                Line::Same(content) => (' ', content),
                Line::Removed(content) => ('-', content),
                Line::Added(content) => ('+', content),
            };
            text.push(mark);
            text.push_str(content);
            text.push('\n');
        }
        start = end + 1;
    }
    text
}

/// `diff -u`'s range: `start,count`, `start` alone for one line, and for none the line before.
fn range(lines_before: usize, count: usize) -> String {
    match count {
        0 => format!("{lines_before},0"),
        1 => format!("{}", lines_before + 1),
        _ => format!("{},{count}", lines_before + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(current: &str, expected: &str, hunks: &str) {
        let diff = unified(current, expected, "a", "b");
        assert_eq!(diff.strip_prefix("--- a\n+++ b\n").unwrap_or(&diff), hunks, "\n{diff}");
    }

    #[test]
    fn diffs_show_the_changed_lines() {
        check("a\nb\nc\n", "a\nx\nc\n", "@@ -1,3 +1,3 @@\n a\n-b\n+x\n c\n");
        check("same\n", "same\n", "");
    }

    #[test]
    fn only_changed_lines_are_marked_even_when_lines_move() {
        // A line inserted at the top and one changed far below: two hunks, nothing else marked.
        let old: String = (1..=20).map(|n| format!("line {n}\n")).collect();
        let new = format!("new\n{}", old.replace("line 15\n", "line fifteen\n"));
        check(
            &old,
            &new,
            "@@ -1,3 +1,4 @@\n+new\n line 1\n line 2\n line 3\n\
             @@ -12,7 +13,7 @@\n line 12\n line 13\n line 14\n-line 15\n+line fifteen\n line 16\n line 17\n line 18\n",
        );
    }

    #[test]
    fn additions_and_removals_at_the_ends_use_diff_u_ranges() {
        check("", "one\n", "@@ -0,0 +1 @@\n+one\n");
        check("one\ntwo\n", "one\n", "@@ -1,2 +1 @@\n one\n-two\n");
    }
}
