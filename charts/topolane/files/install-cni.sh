# Install topolane-cni into the host's CNI bin dir atomically (temp file in the same directory,
# fsync, rename), and make the agent's socket directory root-only.
set -eu
src=${TOPOLANE_CNI_SOURCE:?}
dir=${TOPOLANE_CNI_BIN_DIR:?}
mkdir -p "$dir"
tmp=$(mktemp "$dir/.topolane-cni.XXXXXX")
trap 'rm -f "$tmp"' EXIT
cp "$src" "$tmp"
chmod 0755 "$tmp"
sync "$tmp"
mv -f "$tmp" "$dir/topolane-cni"
trap - EXIT
sync "$dir"
if [ -n "${TOPOLANE_SOCKET_DIR:-}" ]; then
  mkdir -p "$TOPOLANE_SOCKET_DIR"
  chmod 0700 "$TOPOLANE_SOCKET_DIR"
fi
echo "installed $dir/topolane-cni"
