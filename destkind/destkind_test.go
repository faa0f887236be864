package destkind

import "testing"

func TestOf(t *testing.T) {
	for dest, want := range map[string]Kind{"s:ab": Subscription, "o:12": Operator, "c:x": Channel, "x:1": "", "": "", "c": ""} {
		if got := Of(dest); got != want {
			t.Errorf("Of(%q) = %q, want %q", dest, got, want)
		}
	}
	for _, k := range All {
		if Of(k.Prefix()+"id") != k {
			t.Errorf("%s: prefix %q does not map back", k, k.Prefix())
		}
	}
}
