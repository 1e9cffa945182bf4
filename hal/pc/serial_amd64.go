package pc

const com1 = 0x3F8

const comIRQ = 4

// Console input waiting to be read: a ring of rxLen bytes.
const rxLen = 4096

var (
	rxBuf       [rxLen]byte
	rxHead, rxN int
	rxDropped   uint64
	rxOverruns  uint64
)

// serialInit sets COM1 to 115200 baud, 8N1, FIFOs on, with an interrupt
// when input arrives (OUT2 gates the UART's interrupt onto IRQ 4).
func serialInit() {
	outb(com1+1, 0x00)
	outb(com1+3, 0x80)
	outb(com1+0, 0x01)
	outb(com1+1, 0x00)
	outb(com1+3, 0x03)
	// Switching the FIFOs on or off clears them, losing input that is
	// already arriving: leave them as the firmware set them, only setting
	// the receive trigger to one byte if they are on.
	if inb(com1+2)&0xC0 == 0xC0 {
		outb(com1+2, 0x01)
	}
	outb(com1+4, 0x0B) // DTR, RTS, OUT2
	outb(com1+1, 0x01) // received-data interrupt
}

func rxPut(c byte) {
	if rxN == rxLen {
		rxDropped++
		return
	}
	rxBuf[(rxHead+rxN)%rxLen] = c
	rxN++
}

// serialIRQ moves received bytes into the ring and tells the process.
func serialIRQ() {
	for i := 0; i < 4096; i++ {
		lsr := inb(com1 + 5)
		if lsr&0x02 != 0 {
			rxOverruns++
		}
		if lsr&0x01 == 0 {
			break
		}
		rxPut(inb(com1))
	}
	if rxN > 0 {
		proc.ConsoleInput(&mach)
	}
}

// serialRead takes up to len(p) received bytes.
func serialRead(p []byte) int {
	n := 0
	for n < len(p) && rxN > 0 {
		p[n] = rxBuf[rxHead]
		rxHead = (rxHead + 1) % rxLen
		rxN--
		n++
	}
	return n
}

func serialPut(c byte) {
	for i := 0; i < 100000 && inb(com1+5)&0x20 == 0; i++ {
	}
	outb(com1, c)
}

func serialWrite(p []byte) {
	for _, c := range p {
		serialPut(c)
	}
}
