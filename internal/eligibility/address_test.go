package eligibility

import "testing"

func TestNormalize(t *testing.T) {
	t.Parallel()
	cases := []struct {
		email, normalized, company string
	}{
		{"fred@bedrock.example", "fred@bedrock.example", "bedrock.example"},
		{"Fred@Bedrock.Example", "fred@bedrock.example", "bedrock.example"},
		{" fred@bedrock.example ", "fred@bedrock.example", "bedrock.example"},
		{"fred+trial2@bedrock.example", "fred@bedrock.example", "bedrock.example"},
		{"fred@bedrock.example.", "fred@bedrock.example", "bedrock.example"},
		// Dots are another mailbox anywhere but at Gmail.
		{"f.red@bedrock.example", "f.red@bedrock.example", "bedrock.example"},
		{"F.Red+x@googlemail.com", "fred@gmail.com", "gmail.com"},
		// A company is its registrable domain, by the public suffix list.
		{"wilma@eu.mail.acme.co.uk", "wilma@eu.mail.acme.co.uk", "acme.co.uk"},
		{"barney@sales.acme.com", "barney@sales.acme.com", "acme.com"},
		// A private suffix (github.io) makes each of its sites a company.
		{"pebbles@one.github.io", "pebbles@one.github.io", "one.github.io"},
		// An international domain counts in its ASCII form.
		{"dino@bücher.example", "dino@xn--bcher-kva.example", "xn--bcher-kva.example"},
		// A +tag needs a mailbox before it.
		{"+fred@bedrock.example", "+fred@bedrock.example", "bedrock.example"},
	}
	for _, c := range cases {
		a := Normalize(c.email)
		if a.Normalized != c.normalized || a.Company != c.company {
			t.Errorf("Normalize(%q) = %q at %q, want %q at %q", c.email, a.Normalized, a.Company, c.normalized, c.company)
		}
	}
}

func TestDisposableDomains(t *testing.T) {
	t.Parallel()
	set := disposableDomains([]string{"burner.example"}, []string{"mailinator.com"})
	cases := []struct {
		host string
		want bool
	}{
		{"guerrillamail.com", true},
		{"eu.guerrillamail.com", true}, // a subdomain delivers to it too
		{"burner.example", true},       // added by config
		{"mailinator.com", false},      // removed by config
		{"acme.example", false},
		{"com", false},
	}
	for _, c := range cases {
		if got := isListed(set, c.host); got != c.want {
			t.Errorf("isListed(%q) = %v, want %v", c.host, got, c.want)
		}
	}
	if n := len(disposableDomains(nil, nil)); n < 8000 {
		t.Errorf("the vendored list has %d domains, want the whole file (8,000 and more)", n)
	}
}
