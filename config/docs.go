package config

import (
	"strings"
	"unicode/utf8"
)

// usageWidth is where Usage wraps its lines.
const usageWidth = 100

// Usage is the Environment section of `rowfence help` (command "": every
// variable, with the commands that read it) or of `rowfence <command> -h`
// (the variables that command reads): one entry per variable, its meaning,
// type and default, wrapped at 100 columns.
func Usage(command string) string {
	var b strings.Builder
	for i := range Vars {
		v := &Vars[i]
		if command != "" && !v.ReadBy(command) {
			continue
		}
		desc := plain(v.Help) + " (" + plain(v.kind.typ) + "; " + plain(v.defaultText("default ", "unset: ")) + ")"
		if command == "" {
			desc += " [" + strings.Join(v.Commands, ", ") + "]"
		}
		writeWrapped(&b, "  "+v.Name, 30, desc)
	}
	return b.String()
}

// Markdown is the README's table of the variables (between the markers
// <!-- env:begin --> and <!-- env:end -->).
func Markdown() string {
	var b strings.Builder
	b.WriteString("| variable | read by | type | default | meaning |\n| --- | --- | --- | --- | --- |\n")
	for i := range Vars {
		v := &Vars[i]
		commands := make([]string, len(v.Commands))
		for i, c := range v.Commands {
			commands[i] = "`" + c + "`"
			if c == All {
				commands[i] = "all"
			}
		}
		b.WriteString("| `" + v.Name + "` | " + cell(strings.Join(commands, ", ")) + " | " + cell(v.kind.typ) + " | " +
			cell(v.defaultText("", "")) + " | " + cell(v.Help) + " |\n")
	}
	return b.String()
}

// defaultText is the default in backquotes after set, or what unset means
// after unset.
func (v *Var) defaultText(set, unset string) string {
	if v.Default != "" {
		return set + "`" + v.Default + "`"
	}
	return unset + v.Unset
}

// cell escapes the one character a markdown table cell cannot hold.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// writeWrapped writes head, padded to indent columns, then text in words,
// wrapped at usageWidth with continuation lines indented by indent.
func writeWrapped(b *strings.Builder, head string, indent int, text string) {
	line := head + strings.Repeat(" ", max(1, indent-utf8.RuneCountInString(head)))
	fresh := true // nothing but the head or the indent on this line yet
	for _, word := range strings.Fields(text) {
		if !fresh && utf8.RuneCountInString(line)+1+utf8.RuneCountInString(word) > usageWidth {
			b.WriteString(line + "\n")
			line, fresh = strings.Repeat(" ", indent), true
		}
		if !fresh {
			line += " "
		}
		line += word
		fresh = false
	}
	b.WriteString(line + "\n")
}
