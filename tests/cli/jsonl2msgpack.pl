#!/usr/bin/env perl
# jsonl2msgpack.pl - JSON Lines on stdin to a stream of msgpack maps on
# stdout, with core Perl only (JSON::PP), for the `append --format msgpack`
# tests. Integers become msgpack ints, text str, objects maps, arrays
# arrays, null nil, booleans true/false.
use strict;
use warnings;
use B;
use JSON::PP;

binmode STDOUT;
my $json = JSON::PP->new->utf8;

sub pack_len {
    my ($len, $fix, $fixmax, $m8, $m16, $m32) = @_;
    return pack('C', $fix | $len) if $len <= $fixmax;
    return pack('CC', $m8, $len) if defined $m8 && $len < 256;
    return pack('Cn', $m16, $len) if $len < 65536;
    return pack('CN', $m32, $len);
}

sub enc {
    my ($v) = @_;
    return "\xc0" unless defined $v;
    if (JSON::PP::is_bool($v)) { return $v ? "\xc3" : "\xc2"; }
    if (ref $v eq 'HASH') {
        my $out = pack_len(scalar(keys %$v), 0x80, 15, undef, 0xde, 0xdf);
        $out .= enc_str($_) . enc($v->{$_}) for sort keys %$v;
        return $out;
    }
    if (ref $v eq 'ARRAY') {
        my $out = pack_len(scalar(@$v), 0x90, 15, undef, 0xdc, 0xdd);
        $out .= enc($_) for @$v;
        return $out;
    }
    my $flags = B::svref_2object(\$v)->FLAGS;
    if (($flags & (B::SVp_IOK | B::SVp_NOK)) && !($flags & B::SVp_POK)) {
        return pack('C', $v) if $v >= 0 && $v < 128;
        return pack('Cq>', 0xd3, $v);
    }
    return enc_str($v);
}

sub enc_str {
    my ($s) = @_;
    utf8::encode($s);
    return pack_len(length $s, 0xa0, 31, 0xd9, 0xda, 0xdb) . $s;
}

while (my $line = <STDIN>) {
    next if $line =~ /^\s*$/;
    print enc($json->decode($line));
}
