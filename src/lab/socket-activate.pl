#!/usr/bin/perl
# A tiny socket activator for the lab's rpcbind (run by nfs-server.sh):
#   perl socket-activate.pl tcp:IP:PORT tcp6:[IP]:PORT ... -- PROGRAM ARGS...
# binds and listens on each TCP address, hands the sockets over as fds 3, 4, ... with
# LISTEN_FDS/LISTEN_PID set (systemd's socket activation protocol, sd_listen_fds), and execs
# PROGRAM at once, in this same process: the caller's pid is the program's.
# Why: rpcbind binds its UDP sockets to the addresses given with -h, but its TCP ones always to
# the wildcard (0.0.0.0:111 and [::]:111). For each transport it first looks for a matching
# socket among those passed this way and makes only the missing ones itself, so passing
# tcp:SERVER_IP:111 and tcp6:[::1]:111 leaves no TCP socket on a wildcard address.
# systemd-socket-activate would do the same, but it execs only at the first connection, and
# ganesha needs rpcbind's unix socket before that. perl-base (Essential in Debian) has all used.
use strict;
use warnings;
use Errno qw(EAFNOSUPPORT);
use Fcntl qw(F_DUPFD);
use POSIX ();
use Socket qw(AF_INET AF_INET6 IPPROTO_IPV6 IPV6_V6ONLY SOCK_STREAM SOL_SOCKET SOMAXCONN SO_REUSEADDR inet_pton pack_sockaddr_in pack_sockaddr_in6);

sub fail { print STDERR "socket-activate: @_\n"; exit 1; }

my @addresses;
push @addresses, shift @ARGV while @ARGV && $ARGV[0] ne '--';
shift @ARGV;
fail('usage: socket-activate.pl tcp:IP:PORT | tcp6:[IP]:PORT ... -- PROGRAM ARGS...') if !@addresses || !@ARGV;

my @sockets;
for my $spec (@addresses) {
  my ($kind, $ip, $port) = $spec =~ /^(tcp|tcp6):\[?([0-9A-Fa-f.:]+)\]?:(\d{1,5})$/ or fail("cannot read the address \"$spec\" (use tcp:IP:PORT or tcp6:[IP]:PORT)");
  my $af = $kind eq 'tcp6' ? AF_INET6 : AF_INET;
  my $packed = inet_pton($af, $ip) // fail("\"$ip\" is not an address for $kind");
  my $sa = $af == AF_INET6 ? pack_sockaddr_in6($port, $packed) : pack_sockaddr_in($port, $packed);
  my $sock;
  if (!socket($sock, $af, SOCK_STREAM, 0)) {
    # A kernel without IPv6: the program cannot make a tcp6 socket of its own either.
    if ($af == AF_INET6 && $! == EAFNOSUPPORT) { print STDERR "socket-activate: no IPv6 in this kernel, $spec skipped\n"; next; }
    fail("socket for $spec: $!");
  }
  setsockopt($sock, SOL_SOCKET, SO_REUSEADDR, 1) or fail("SO_REUSEADDR on $spec: $!");
  # An IPv6 socket accepts IPv4 too unless told not to; it must hold exactly the address given.
  if ($af == AF_INET6) { setsockopt($sock, IPPROTO_IPV6, IPV6_V6ONLY, 1) or fail("IPV6_V6ONLY on $spec: $!"); }
  bind($sock, $sa) or fail("cannot bind $spec: $!");
  listen($sock, SOMAXCONN) or fail("cannot listen on $spec: $!");
  push @sockets, $sock;
}

# Move the sockets to 3, 4, ... by way of high numbers, so no dup2 overwrites a socket not yet
# moved; the copies dup2 makes are not close-on-exec (Perl's own descriptors above 2 are).
my @high;
for my $sock (@sockets) {
  my $fd = fcntl($sock, F_DUPFD, 64) or fail("F_DUPFD: $!");
  push @high, $fd + 0;
  close $sock;
}
for my $i (0 .. $#high) {
  defined POSIX::dup2($high[$i], 3 + $i) or fail("dup2 to fd " . (3 + $i) . ": $!");
  POSIX::close($high[$i]);
}

$ENV{LISTEN_FDS} = scalar @high;
$ENV{LISTEN_PID} = $$;
delete $ENV{LISTEN_FDNAMES};
exec { $ARGV[0] } @ARGV or fail("cannot run $ARGV[0]: $!");
