#!/usr/bin/perl
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Build libaioctx's reference documentation from the public headers, so that
# the manual and the header comments cannot drift apart.
#
#   mkref.pl --version V --overview docs/libaioctx.7.txt \
#            [--man OUTDIR] [--html OUTFILE] include/aioctx/*.h
#
# What it reads: every "AIOCTX_API" declaration with the comment right
# above it (declarations on consecutive lines, with no comment or blank
# line between, share the first one's comment and page), documented lower-case
# function-like macros (aio_bh_new, ...), documented types and constants,
# each header's opening comment and its "/* ---- */ /* Title */" sections.
#
# What it writes:
#   --man OUTDIR  OUTDIR/man3/NAME.3 for every function, variable and macro
#                 (one page per comment; the other names of a shared comment
#                 get ".so" pages), OUTDIR/man3/aioctx-HEADER.3 per header
#                 (overview, types, constants, functions), and
#                 OUTDIR/man7/libaioctx.7 from the overview text.  OUTDIR is
#                 emptied first, so removed functions leave no page behind.
#   --html FILE   one HTML page with all of the above and a table of
#                 contents.
#
# Comment markup (what the headers already use): blank lines separate
# paragraphs; "- " starts a list item (continuation lines indented to its
# text); lines indented deeper than the surrounding text are shown as
# written (code, tables); "name()" becomes a reference.  The overview file
# uses the same markup plus "== TITLE" lines for sections.
use strict;
use warnings;

my ($version, $overview, $mandir, $htmlfile) = ('', '', '', '');
my @headers;
while (@ARGV) {
    my $a = shift @ARGV;
    if ($a eq '--version') { $version = shift @ARGV; }
    elsif ($a eq '--overview') { $overview = shift @ARGV; }
    elsif ($a eq '--man') { $mandir = shift @ARGV; }
    elsif ($a eq '--html') { $htmlfile = shift @ARGV; }
    elsif ($a =~ /^-/) { die "mkref.pl: unknown option $a\n"; }
    else { push @headers, $a; }
}
die "usage: mkref.pl --version V --overview FILE [--man DIR] [--html FILE] "
  . "HEADER...\n" unless @headers && $overview && ($mandir || $htmlfile);

my $manual = 'libaioctx Manual';
my $source = "libaioctx $version";

# ---------------------------------------------------------------------
# Parsing the headers
# ---------------------------------------------------------------------

# One header: { file, page, title, intro (comment text), entries => [...] }
# An entry: { kind => func|var|macro|type|const, names => [...],
#             decls => [...], comment, section }
my @docs;
my %page_of;    # symbol name -> page name (for references)
my $errors = 0;

sub comment_text {
    my ($c) = @_;
    $c =~ s{^/\*}{};
    $c =~ s{\*/$}{};
    my @lines = split /\n/, $c, -1;
    for (@lines) {
        s/^\s*\* ?// or s/^\s//;
        s/\s+$//;
    }
    shift @lines while @lines && $lines[0] eq '';
    pop @lines while @lines && $lines[-1] eq '';
    return join("\n", @lines);
}

# Collapse a declaration to one line, without the export macros.
sub clean_decl {
    my ($d) = @_;
    $d =~ s{/\*.*?\*/}{}gs unless $d =~ /[{]/;
    $d =~ s/\bAIOCTX_API\s+//g;
    $d =~ s/\s*\bAIOCTX_PRINTF\s*\([^)]*\)//g;
    $d =~ s/\s*\b__attribute__\s*\(\((?:[^()]|\([^()]*\))*\)\)//g;
    $d =~ s/^\s*extern\s+// if $d =~ /\(/;
    $d =~ s/\s+/ /g unless $d =~ /[{]/;
    $d =~ s/\(\s+/(/g;
    $d =~ s/\s+\)/)/g;
    $d =~ s/^\s+|\s+$//g;
    return $d;
}

sub decl_name {
    my ($d) = @_;
    if ($d =~ /\(/) {
        # The name is the identifier right before the parameter list.
        $d =~ /(\w+)\s*\((?:[^()]|\([^()]*\))*\)\s*;?\s*$/ or return undef;
        return $1;
    }
    $d =~ /(\w+)\s*;?\s*$/ or return undef;
    return $1;
}

sub parse_header {
    my ($file) = @_;
    open my $fh, '<', $file or die "mkref.pl: $file: $!\n";
    my $text = do { local $/; <$fh> };
    close $fh;
    (my $base = $file) =~ s{.*/}{};
    (my $stem = $base) =~ s/\.h$//;
    my $doc = { file => "aioctx/$base", page => "aioctx-$stem",
                title => '', intro => '', entries => [] };

    my @comments_seen;
    my $pending;            # the comment right above the next item
    my $section = '';
    my $rule_open = 0;      # inside "/* ---- */ /* Title */ /* ---- */"
    my $last_api;           # the previous item, if it was an API entry
    my $last_const;         # the previous item, if it was a constant
    my $gap = 0;            # a blank line since the previous item
    my $depth = 0;
    my $pos = 0;
    my $len = length $text;
    while ($pos < $len) {
        my $rest = substr($text, $pos);
        if ($rest =~ /^(\s+)/) {
            my $ws = $1;
            $gap = 1 if $ws =~ /\n[ \t]*\n/;
            $pos += length $ws;
            next;
        }
        my $had_gap = $gap;
        $gap = 0;
        if ($rest =~ m{^(/\*.*?\*/)}s) {
            my $c = comment_text($1);
            $pos += length $1;
            push @comments_seen, $c;
            if ($c =~ /^-+$/) {
                $rule_open = !$rule_open;
                $pending = undef;
                next;
            }
            if ($rule_open) {
                $section = $c;
                next;
            }
            $pending = $c;
            if (@comments_seen == 2 && !$doc->{intro}) {
                # The header's opening comment (after the SPDX line).
                $doc->{intro} = $c;
                $pending = undef;
            }
            next;
        }
        if ($rest =~ /^(#(?:[^\n]*\\\n)*[^\n]*)/) {
            my $line = $1;
            $pos += length $line;
            if ($line =~ /^#\s*define\s+(\w+)(\(([^)]*)\))?\s*(.*)$/s
                && (defined $pending || $line !~ /^#\s*define\s+\w+\(/)) {
                my ($name, $fnlike, $args, $body) = ($1, $2, $3, $4);
                if ($name !~ /_$/ && $name !~ /^AIOCTX_[A-Z_]*_H$/) {
                    $body =~ s/\\\n/ /g;
                    $body =~ s/\s+/ /g;
                    if ($fnlike && $name =~ /^[a-z]/) {
                        push @{$doc->{entries}}, {
                            kind => 'macro', names => [$name],
                            decls => ["#define $name($args)"],
                            comment => $pending, section => $section };
                    } else {
                        my $def = "#define $name" . ($fnlike // '')
                                . ($body ne '' ? " $body" : '');
                        if (!defined $pending && $last_const && !$had_gap) {
                            push @{$last_const->{decls}}, $def;
                        } else {
                            $last_const = {
                                kind => 'const', names => [$name],
                                decls => [$def], comment => $pending // '',
                                section => $section };
                            push @{$doc->{entries}}, $last_const;
                        }
                        $pending = undef;
                        $last_api = undef;
                        next;
                    }
                }
            }
            $pending = undef;
            $last_api = undef;
            $last_const = undef;
            next;
        }
        if ($rest =~ /^extern\s+"C"\s*\{/ || $rest =~ /^\}/) {
            $rest =~ /^(extern\s+"C"\s*\{|\})/;
            $pos += length $1;
            next;
        }
        # A declaration: up to the ';' outside braces.
        my $i = 0;
        $depth = 0;
        my $rlen = length $rest;
        while ($i < $rlen) {
            my $ch = substr($rest, $i, 1);
            if ($ch eq '/' && substr($rest, $i, 2) eq '/*') {
                my $end = index($rest, '*/', $i + 2);
                $i = $end < 0 ? $rlen : $end + 2;
                next;
            }
            $depth++ if $ch eq '{';
            $depth-- if $ch eq '}';
            last if $ch eq ';' && $depth == 0;
            $i++;
        }
        my $decl = substr($rest, 0, $i + 1);
        $pos += $i + 1;
        if ($decl =~ /\bAIOCTX_API\b/) {
            my $clean = clean_decl($decl);
            my $name = decl_name($clean);
            if (!defined $name) {
                warn "mkref.pl: $file: cannot parse: $clean\n";
                $errors++;
            } elsif (!defined $pending && $last_api && !$had_gap) {
                push @{$last_api->{names}}, $name;
                push @{$last_api->{decls}}, $clean;
            } else {
                warn "mkref.pl: $file: $name has no comment above it\n"
                    unless defined $pending;
                my $e = { kind => ($clean =~ /\(/ ? 'func' : 'var'),
                          names => [$name], decls => [$clean],
                          comment => $pending // '', section => $section };
                push @{$doc->{entries}}, $e;
                $last_api = $e;
            }
        } else {
            if ($decl =~ /^\s*typedef\b/) {
                my $clean = clean_decl($decl);
                my $tname = decl_name($clean) // '';
                if ($decl =~ /\{/) {
                    $clean = $decl;
                    $clean =~ s/^\s+|\s+$//g;
                    $decl =~ /\}\s*(\w+)\s*;\s*$/ and $tname = $1;
                } elsif ($decl =~ /^\s*typedef\s+[^;(]*\(\s*\*?\s*(\w+)\s*\)/
                         || $decl =~ /^\s*typedef\s+.*?\b(\w+)\s*\(/s) {
                    $tname = $1;
                }
                push @{$doc->{entries}}, {
                    kind => 'type', names => [$tname], decls => [$clean],
                    comment => $pending // '', section => $section };
            }
            $last_api = undef;
        }
        $last_const = undef;
        $pending = undef;
    }
    ($doc->{title} = $doc->{intro}) =~ s/\n.*//s;
    $doc->{title} =~ s/^libaioctx:\s*//;
    $doc->{title} =~ s/\.$//;
    for my $e (@{$doc->{entries}}) {
        next if $e->{kind} eq 'type' || $e->{kind} eq 'const';
        for my $n (@{$e->{names}}) {
            $page_of{$n} = $e->{names}[0];
        }
    }
    return $doc;
}

for my $h (@headers) {
    my $d = parse_header($h);
    push @docs, $d if grep { $_->{kind} =~ /^(func|var|macro)$/ }
                       @{$d->{entries}};
}
exit 1 if $errors;

# The first sentence of a comment, for NAME lines and summaries.
sub summary {
    my ($c) = @_;
    my $s = $c;
    $s =~ s/\n\s*\n.*//s;       # first paragraph
    $s =~ s/\s+/ /g;
    # Up to the first full stop followed by a space (not "e.g. ", "i.e. ").
    if ($s =~ /^(.*?(?<!\be\.g)(?<!\bi\.e)(?<!\bvs)\.)(\s|$)/) {
        $s = $1;
    }
    $s =~ s/\.$//;
    # Long: keep the head of the sentence, up to a ":" or ";" (else a "("),
    # outside parentheses and quotes.
    for my $stop (qr/[:;] /, qr/ \(/) {
        last if length($s) <= 90;
        my ($depth, $quoted) = (0, 0);
        for my $i (15 .. length($s) - 2) {
            my $c = substr($s, $i, 1);
            my $prefix = substr($s, 0, $i);
            $depth = () = $prefix =~ /\(/g;
            $depth -= () = $prefix =~ /\)/g;
            $quoted = (() = $prefix =~ /"/g) % 2;
            next if $depth || $quoted;
            if (substr($s, $i, 2) =~ /^$stop$/) {
                $s = $prefix;
                last;
            }
        }
    }
    return $s;
}

# ---------------------------------------------------------------------
# Comment markup -> blocks
# ---------------------------------------------------------------------
# Blocks: [ 'p', text ] [ 'li', text, level ] [ 'lip', text ] (a further
# paragraph of the current list item) [ 'pre', text ] [ 'sh', title ]

sub indent_of { my ($l) = @_; $l =~ /^( *)/; return length $1; }

sub blocks {
    my ($text) = @_;
    my @out;
    my @lines = split /\n/, $text, -1;
    my $item_indent = -1;       # text indent of the open list item
    my $cur;                    # block being filled
    my $i = 0;
    my $flush = sub { push @out, $cur if $cur; $cur = undef; };
    while ($i < @lines) {
        my $l = $lines[$i];
        my $ind = indent_of($l);
        if ($l =~ /^== (.*)$/) {
            $flush->();
            push @out, [ 'sh', $1 ];
            $item_indent = -1;
        } elsif ($l eq '') {
            if ($cur && $cur->[0] eq 'pre') {
                # A blank line inside a preformatted block keeps it open when
                # the block goes on after it.
                my $j = $i + 1;
                $j++ while $j < @lines && $lines[$j] eq '';
                my $lim = $item_indent >= 0 ? $item_indent : 0;
                if ($j < @lines && indent_of($lines[$j]) > $lim
                    && $lines[$j] !~ /^\s*- /
                    && indent_of($lines[$j]) != $item_indent) {
                    $cur->[1] .= "\n" x ($j - $i);
                    $i = $j;
                    next;
                }
            }
            $flush->();
        } elsif ($l =~ /^( *)- (.*)$/) {
            $flush->();
            $item_indent = length($1) + 2;
            $cur = [ 'li', $2 ];
        } elsif ($cur && ($cur->[0] eq 'li' || $cur->[0] eq 'lip')
                 && $ind >= $item_indent && $ind < $item_indent + 4) {
            $cur->[1] .= ' ' . substr($l, $ind);
        } elsif ($ind == 0 || ($item_indent < 0 && $ind < 2)) {
            $item_indent = -1 if $ind == 0 && !($cur && $cur->[0] eq 'p');
            if ($cur && $cur->[0] eq 'p') {
                $cur->[1] .= ' ' . substr($l, $ind);
            } else {
                $flush->();
                $item_indent = -1;
                $cur = [ 'p', substr($l, $ind) ];
            }
        } elsif ($item_indent >= 0 && $ind == $item_indent && !$cur) {
            $cur = [ 'lip', substr($l, $ind) ];
        } else {
            if ($cur && $cur->[0] eq 'pre') {
                $cur->[1] .= "\n$l";
            } else {
                $flush->();
                $cur = [ 'pre', $l ];
            }
        }
        $i++;
    }
    $flush->();
    # Strip the common indentation of preformatted blocks.
    for my $b (@out) {
        next unless $b->[0] eq 'pre';
        my $min = 1e9;
        for (split /\n/, $b->[1]) {
            next if $_ eq '';
            my $n = indent_of($_);
            $min = $n if $n < $min;
        }
        $b->[1] = join "\n", map { $_ eq '' ? '' : substr($_, $min) }
                              split /\n/, $b->[1], -1;
    }
    return @out;
}

# ---------------------------------------------------------------------
# roff output
# ---------------------------------------------------------------------

sub roff_esc {
    my ($s) = @_;
    $s =~ s/\\/\\e/g;
    $s =~ s/-/\\-/g;
    return $s;
}

sub roff_line_start {
    my ($s) = @_;
    $s =~ s/^([.'])/\\&$1/mg;
    return $s;
}

sub roff_inline {
    my ($s) = @_;
    $s = roff_esc($s);
    # name() -> bold reference
    $s =~ s/\b(\w+)\(\)/\\fB$1\\fP()/g;
    return roff_line_start($s);
}

sub roff_blocks {
    my ($text) = @_;
    my $o = '';
    for my $b (blocks($text)) {
        my ($k, $t) = @$b;
        if ($k eq 'p') {
            $o .= ".PP\n" . roff_inline($t) . "\n";
        } elsif ($k eq 'li') {
            $o .= ".IP \\(bu 2\n" . roff_inline($t) . "\n";
        } elsif ($k eq 'lip') {
            $o .= ".IP \"\" 2\n" . roff_inline($t) . "\n";
        } elsif ($k eq 'pre') {
            $o .= ".PP\n.RS 4\n.EX\n" . roff_line_start(roff_esc($t))
                . "\n.EE\n.RE\n";
        } elsif ($k eq 'sh') {
            $o .= ".SH " . roff_esc($t) . "\n";
        }
    }
    return $o;
}

# Wrap a declaration at commas to fit 78 columns, continuation lines
# aligned after the opening parenthesis.
sub wrap_decl {
    my ($d) = @_;
    return $d if length($d) <= 78 || $d !~ /\(/ || $d =~ /\{/;
    my $open = index($d, '(');
    my $pad = ' ' x ($open + 1);
    $pad = "    " if length($pad) > 50;
    my @parts = split /(?<=,) /, $d;
    my $out = shift @parts;
    my $line = $out;
    for my $p (@parts) {
        if (length($line) + 1 + length($p) > 78) {
            $out .= "\n$pad$p";
            $line = "$pad$p";
        } else {
            $out .= " $p";
            $line .= " $p";
        }
    }
    return $out;
}

sub th {
    my ($name, $sec) = @_;
    return ".\\\" Generated by docs/mkref.pl from the public headers; "
         . "do not edit.\n"
         . ".TH \"" . uc(roff_esc($name)) . "\" $sec \"\" \"$source\" "
         . "\"$manual\"\n.nr HY 0\n.nh\n";
}

sub see_also {
    my (@refs) = @_;
    my %seen;
    @refs = grep { !$seen{$_->[0]}++ } @refs;
    return '' unless @refs;
    my @l = map { ".BR " . roff_esc($_->[0]) . " ($_->[1])" } @refs;
    $l[$_] .= ' ,' for 0 .. $#l - 1;
    return ".SH SEE ALSO\n" . join("\n", @l) . "\n";
}

sub write_file {
    my ($path, $content) = @_;
    open my $fh, '>', $path or die "mkref.pl: $path: $!\n";
    print $fh $content;
    close $fh or die "mkref.pl: $path: $!\n";
}

sub read_overview {
    open my $fh, '<', $overview or die "mkref.pl: $overview: $!\n";
    my @l = <$fh>;
    close $fh;
    chomp @l;
    # Leading "#" lines are the file's own comments (licence).
    shift @l while @l && $l[0] =~ /^#/;
    shift @l while @l && $l[0] eq '';
    my $title = shift @l;       # first line: the NAME line's description
    shift @l while @l && $l[0] eq '';
    return ($title, join("\n", @l));
}

sub entry_synopsis {
    my ($e) = @_;
    return join("\n", map { wrap_decl($_) } @{$e->{decls}});
}

sub write_man {
    my $dir = $mandir;
    for my $sub ('man3', 'man7') {
        if (-d "$dir/$sub") {
            opendir my $dh, "$dir/$sub" or die "$dir/$sub: $!\n";
            unlink map { "$dir/$sub/$_" } grep { /\.[37]$/ } readdir $dh;
            closedir $dh;
        }
    }
    mkdir $dir;
    mkdir "$dir/man3";
    mkdir "$dir/man7";

    my $inc = ".nf\n.B #include <aioctx.h>\n.fi\n";
    my $link = ".PP\nLink with \\fI\\-laioctx\\fP "
             . "(\\fIpkg\\-config \\-\\-libs libaioctx\\fP).\n";
    for my $d (@docs) {
        # Per-function pages.
        for my $e (@{$d->{entries}}) {
            next unless $e->{kind} =~ /^(func|var|macro)$/;
            my @names = @{$e->{names}};
            my $main = $names[0];
            my $o = th($main, 3);
            $o .= ".SH NAME\n" . join(', ', map { roff_esc($_) } @names)
                . " \\- " . roff_esc(summary($e->{comment})) . "\n";
            $o .= ".SH SYNOPSIS\n$inc.PP\n.nf\n"
                . roff_line_start(roff_esc(entry_synopsis($e))) . "\n.fi\n"
                . $link;
            $o .= ".SH DESCRIPTION\n" . roff_blocks($e->{comment});
            my @refs = ([$d->{page}, 3], ['libaioctx', 7]);
            # The other entries of the same section.
            for my $o2 (@{$d->{entries}}) {
                next unless $o2->{kind} =~ /^(func|var|macro)$/;
                next if $o2 == $e || $o2->{section} ne $e->{section};
                push @refs, [$o2->{names}[0], 3];
            }
            # Functions the comment mentions.
            while ($e->{comment} =~ /\b(\w+)\(\)/g) {
                push @refs, [$page_of{$1}, 3]
                    if $page_of{$1} && $page_of{$1} ne $main;
            }
            $o .= see_also(@refs);
            write_file("$dir/man3/$main.3", $o);
            for my $n (@names[1 .. $#names]) {
                write_file("$dir/man3/$n.3", ".so man3/$main.3\n");
            }
        }
        # The header's page.
        my $o = th($d->{page}, 3);
        $o .= ".SH NAME\n" . roff_esc($d->{page}) . " \\- "
            . roff_esc($d->{title}) . "\n";
        $o .= ".SH SYNOPSIS\n.nf\n.B #include <$d->{file}>\n.fi\n"
            . ".PP\n(\\fB#include <aioctx.h>\\fP includes every header.)\n";
        my $intro = $d->{intro};
        $intro = '' unless $intro =~ s/^libaioctx: .*?\n\s*\n//s;
        $o .= ".SH DESCRIPTION\n" . roff_blocks($intro) if $intro ne '';
        my @types = grep { $_->{kind} eq 'type' } @{$d->{entries}};
        if (@types) {
            $o .= ".SH TYPES\n";
            for my $t (@types) {
                $o .= ".PP\n.RS 4\n.EX\n"
                    . roff_line_start(roff_esc($t->{decls}[0]))
                    . "\n.EE\n.RE\n" . roff_blocks($t->{comment});
            }
        }
        my @consts = grep { $_->{kind} eq 'const' } @{$d->{entries}};
        if (@consts) {
            $o .= ".SH CONSTANTS AND MACROS\n";
            for my $c (@consts) {
                $o .= ".TP\n" . join(".TQ\n", map { ".B " . roff_esc($_)
                                                     . "\n" } @{$c->{decls}})
                    . roff_inline(join ' ', split /\s*\n\s*/,
                                  $c->{comment}) . "\n";
            }
        }
        $o .= ".SH FUNCTIONS\n";
        my $sec = "\0";
        my @refs;
        for my $e (@{$d->{entries}}) {
            next unless $e->{kind} =~ /^(func|var|macro)$/;
            if ($e->{section} ne $sec) {
                $sec = $e->{section};
                $o .= ".SS " . roff_esc($sec) . "\n" if $sec ne '';
            }
            $o .= ".TP\n.BR " . join(' ", " ', map { roff_esc($_) }
                                    @{$e->{names}}) . " (3)\n"
                . roff_inline(summary($e->{comment})) . "\n";
            push @refs, [$e->{names}[0], 3];
        }
        $o .= see_also(['libaioctx', 7],
                       map { [$_->{page}, 3] } grep { $_ != $d } @docs);
        write_file("$dir/man3/$d->{page}.3", $o);
    }
    # The overview, section 7.
    my ($title, $body) = read_overview();
    my $o = th('libaioctx', 7);
    $o .= ".SH NAME\nlibaioctx \\- " . roff_esc($title) . "\n";
    $o .= roff_blocks($body);
    $o .= see_also(map { [$_->{page}, 3] } @docs);
    write_file("$dir/man7/libaioctx.7", $o);
}

# ---------------------------------------------------------------------
# HTML output
# ---------------------------------------------------------------------

sub h {
    my ($s) = @_;
    $s =~ s/&/&amp;/g;
    $s =~ s/</&lt;/g;
    $s =~ s/>/&gt;/g;
    $s =~ s/"/&quot;/g;
    return $s;
}

sub html_inline {
    my ($s) = @_;
    $s = h($s);
    $s =~ s{\b(\w+)\(\)}{
        $page_of{$1} ? "<a href=\"#$page_of{$1}\"><code>$1</code></a>()"
                     : "<code>$1</code>()" }ge;
    return $s;
}

sub html_blocks {
    my ($text) = @_;
    my $o = '';
    my $in_list = 0;
    for my $b (blocks($text)) {
        my ($k, $t) = @$b;
        if ($in_list && $k ne 'li' && $k ne 'lip') {
            $o .= "</li></ul>\n";
            $in_list = 0;
        }
        if ($k eq 'p') {
            $o .= "<p>" . html_inline($t) . "</p>\n";
        } elsif ($k eq 'li') {
            $o .= $in_list ? "</li>\n<li>" : "<ul>\n<li>";
            $in_list = 1;
            $o .= html_inline($t);
        } elsif ($k eq 'lip') {
            $o .= "<p>" . html_inline($t) . "</p>";
        } elsif ($k eq 'pre') {
            $o .= "<pre>" . h($t) . "</pre>\n";
        } elsif ($k eq 'sh') {
            $o .= "<h3>" . h(ucfirst lc $t) . "</h3>\n";
        }
    }
    $o .= "</li></ul>\n" if $in_list;
    return $o;
}

sub write_html {
    my ($title, $body) = read_overview();
    my $toc = '';
    my $main = '';
    for my $d (@docs) {
        $toc .= "<li><a href=\"#$d->{page}\">&lt;$d->{file}&gt;</a> "
              . h($d->{title}) . "<ul>\n";
        $main .= "<section><h2 id=\"$d->{page}\">&lt;$d->{file}&gt;: "
               . h($d->{title}) . "</h2>\n";
        my $intro = $d->{intro};
        $intro = '' unless $intro =~ s/^libaioctx: .*?\n\s*\n//s;
        $main .= html_blocks($intro);
        my @types = grep { $_->{kind} eq 'type' } @{$d->{entries}};
        if (@types) {
            $main .= "<h3>Types</h3>\n";
            for my $t (@types) {
                $main .= "<pre class=\"decl\">" . h($t->{decls}[0])
                       . "</pre>\n" . html_blocks($t->{comment});
            }
        }
        my @consts = grep { $_->{kind} eq 'const' } @{$d->{entries}};
        if (@consts) {
            $main .= "<h3>Constants and macros</h3>\n<dl>\n";
            for my $c (@consts) {
                $main .= join('', map { "<dt><code>" . h($_)
                                        . "</code></dt>" } @{$c->{decls}})
                       . "<dd>" . html_inline($c->{comment}) . "</dd>\n";
            }
            $main .= "</dl>\n";
        }
        my $sec = "\0";
        for my $e (@{$d->{entries}}) {
            next unless $e->{kind} =~ /^(func|var|macro)$/;
            if ($e->{section} ne $sec) {
                $sec = $e->{section};
                $main .= "<h3>" . h($sec) . "</h3>\n" if $sec ne '';
            }
            my $id = $e->{names}[0];
            $toc .= "<li><a href=\"#$id\">"
                  . join(', ', map { h($_) } @{$e->{names}}) . "</a></li>\n";
            $main .= "<div class=\"fn\">"
                   . join('', map { "<span id=\"$_\"></span>" }
                                  @{$e->{names}}[1 .. $#{$e->{names}}])
                   . "<h4 id=\"$id\">"
                   . join(', ', map { h($_) } @{$e->{names}}) . "</h4>\n"
                   . "<pre class=\"decl\">" . h(entry_synopsis($e))
                   . "</pre>\n" . html_blocks($e->{comment}) . "</div>\n";
        }
        $toc .= "</ul></li>\n";
        $main .= "</section>\n";
    }
    my $o = <<"EOF";
<!DOCTYPE html>
<!-- Generated by docs/mkref.pl from the public headers; do not edit. -->
<html lang="en"><head><meta charset="utf-8">
<title>libaioctx $version reference</title>
<style>
body { font-family: sans-serif; max-width: 56em; margin: auto; padding: 1em;
       line-height: 1.4; }
pre { background: #f4f4f4; padding: .5em; overflow-x: auto; }
pre.decl { border-left: 3px solid #888; }
div.fn { margin: 1.5em 0; }
h4 { font-family: monospace; font-size: 1.1em; margin-bottom: .3em; }
</style></head><body>
<h1>libaioctx $version reference</h1>
<p>@{[ h($title) ]}.  Generated from the public headers; the same text is
installed as man pages (<code>man 3 aio_poll</code>,
<code>man 7 libaioctx</code>).</p>
<h2 id="overview">Overview</h2>
@{[ html_blocks($body) ]}
<h2>Contents</h2>
<ul>
$toc</ul>
$main
</body></html>
EOF
    write_file($htmlfile, $o);
}

write_man() if $mandir;
write_html() if $htmlfile;
