package dhcp

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzParseMessage feeds arbitrary bytes to ParseMessage: it must not
// panic, and whatever it accepts must survive a marshal/parse round trip
// unchanged, with every typed accessor callable on it.
func FuzzParseMessage(f *testing.F) {
	for _, m := range sampleMessages(f) {
		b, err := m.MarshalBinary()
		require.NoError(f, err)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMessage(b)
		if err != nil {
			require.ErrorIs(t, err, ErrMalformed)
			require.Nil(t, m)
			return
		}
		exerciseAccessors(m)
		out, err := m.MarshalBinary()
		require.NoError(t, err)
		m2, err := ParseMessage(out)
		require.NoError(t, err)
		require.Equal(t, m, m2)
	})
}

func exerciseAccessors(m *Message) {
	o := m.Options
	_, _ = o.MessageType()
	_, _ = o.ServerIdentifier()
	_, _ = o.RequestedIPAddress()
	_, _ = o.LeaseTime()
	_, _ = o.RenewalTime()
	_, _ = o.RebindingTime()
	_, _ = o.SubnetMask()
	_, _ = o.Routers()
	_, _ = o.DomainNameServers()
	_, _ = o.DomainName()
	_, _ = o.HostName()
	_, _ = o.Message()
	_, _ = o.ClientIdentifier()
	_, _ = o.ParameterRequestList()
	_, _ = o.MaximumMessageSize()
	_, _ = o.InterfaceMTU()
	_, _ = o.BroadcastAddress()
	_, _ = o.ClasslessStaticRoutes()
	_ = m.String()
	_ = m.HardwareAddr()
	_ = m.ServerName()
	_ = m.BootFile()
	_, _ = leaseFromAck(m, 0)
}
