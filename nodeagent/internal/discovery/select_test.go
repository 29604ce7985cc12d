package discovery_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/topolane/topolane/nodeagent/internal/discovery"
)

func TestParseSelectors(t *testing.T) {
	for _, tt := range []struct {
		list    string
		want    discovery.Selectors
		wantErr string
	}{
		{list: "", want: nil},
		{list: " ", want: nil},
		{list: "0000:1a:00.0, 1B:00.1,enp*s0np0,15b3:1021,15B3:101E,eno[12],eth0.100", want: discovery.Selectors{
			{Text: "0000:1a:00.0", PCIAddress: "0000:1a:00.0"},
			{Text: "1B:00.1", PCIAddress: "0000:1b:00.1"},
			{Text: "enp*s0np0", Glob: "enp*s0np0"},
			{Text: "15b3:1021", VendorDevice: [2]uint16{0x15b3, 0x1021}},
			{Text: "15B3:101E", VendorDevice: [2]uint16{0x15b3, 0x101e}},
			{Text: "eno[12]", Glob: "eno[12]"},
			{Text: "eth0.100", Glob: "eth0.100"},
		}},
		{list: "0000:1a:00", wantErr: `--nics "0000:1a:00": "0000:1a:00" is not a PCI address: want the form 0000:1a:00.0`},
		{list: "0000:1a:00.8", wantErr: `"0000:1a:00.8" is not a PCI address`},
		{list: "0000:zz:00.0", wantErr: `"0000:zz:00.0" is not a PCI address`},
		{list: "15b3:10211", wantErr: `"15b3:10211" is not a vendor:device id: want four hex digits each, like 15b3:1021`},
		{list: "mlx:1021", wantErr: `"mlx:1021" is not a vendor:device id`},
		{list: "enp1s0,,eno1", wantErr: "an empty entry (two commas in a row, or one at an end?)"},
		{list: "enp1s0,", wantErr: "an empty entry"},
		{list: "enp[1", wantErr: `"enp[1" is not a valid netdev glob`},
		{list: "net/eth0", wantErr: `"net/eth0" cannot match a netdev name: they have no / or spaces`},
		{list: "averylongnetdevname", wantErr: "at most 15 characters"},
	} {
		got, err := discovery.ParseSelectors("--nics", tt.list)
		if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("ParseSelectors(%q): error %v, want %q", tt.list, err, tt.wantErr)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseSelectors(%q) (-want +got):\n%s", tt.list, diff)
		}
		if err == nil && got.String() != strings.ReplaceAll(strings.TrimSpace(tt.list), ", ", ",") {
			t.Errorf("String() = %q, want the list as written", got.String())
		}
	}
}
